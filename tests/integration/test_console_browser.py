"""The console end to end in headless Chromium: people sign in, search, listen and seek,
act on holds and see the audit log verified. Controls are found by their accessible
names, as a screen reader would; a screenshot of each main page is saved."""

from __future__ import annotations

import asyncio
import re
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import strategies as st
from playwright.async_api import Browser, BrowserContext, Page, Request, Response, expect

from recordings_service import people
from tests.audio import long_wav, wav_tone
from tests.browser import (  # noqa: F401 (chromium is a fixture)
    axe_violations,
    chromium,
    screenshot_path,
)
from tests.conftest import Api
from tests.integration.helpers import generated

# One stack is enough here: the pages sit on the domain functions the API suites run on
# both stacks.
pytestmark = pytest.mark.parametrize("config", ["sqlite"], indirect=True)

PASSWORD = "plum-orchard-vinegar-42"


@dataclass
class Visit:
    """A person's browser on the console, and everything it asked for."""

    page: Page
    context: BrowserContext
    base: str
    requests: list[str] = field(default_factory=list)
    media: list[tuple[str | None, int]] = field(default_factory=list)  # (Range, status)
    problems: list[str] = field(default_factory=list)


async def _on_response(visit: Visit, response: Response) -> None:
    if "/v1/playback/" in response.url:
        visit.media.append((await response.request.header_value("range"), response.status))


@pytest.fixture
async def visit(api: Api, chromium: Browser) -> AsyncIterator[Visit]:  # noqa: F811
    base = str(api.client.make_url("/")).rstrip("/")
    context = await chromium.new_context(viewport={"width": 1280, "height": 900},
                                         timezone_id="Europe/Helsinki")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    found = Visit(page, context, base)

    def on_request(request: Request) -> None:
        found.requests.append(request.url)

    page.on("request", on_request)
    page.on("response", lambda response: _on_response(found, response))
    page.on("console", lambda message: found.problems.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: found.problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    yield found
    await context.close()


async def looked_at(page: Page, name: str) -> None:
    """A screenshot of the page for a reviewer, and axe-core's accessibility audit of it,
    which must find nothing."""
    await page.screenshot(path=screenshot_path(name), full_page=True)
    assert await axe_violations(page) == [], name


async def sign_in(api: Api, visit: Visit, name: str, roles: list[str],
                  agent_id: str | None = None) -> None:
    """Creates the account, then signs in by keyboard alone from the start page."""
    await people.create_user(api.services.database, name, roles, PASSWORD, api.clock(),
                             agent_id)
    page = visit.page
    await page.goto(visit.base + "/")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F$"))
    if name == "sanna":
        await looked_at(page, "sign-in")
    await page.get_by_label("Account name").focus()
    await page.keyboard.type(name)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


async def until(page: Page, selector: str, check: str, seconds: float = 15.0) -> None:
    """Waits until ``check`` (a function of the element) is true. Playwright's own
    wait_for_function evaluates a string in the page, which the console's CSP forbids
    (as it should); evaluation from the driver is not bound by it."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await page.eval_on_selector(selector, check):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {check}"
        await asyncio.sleep(0.05)


def nothing_left_the_origin(visit: Visit) -> None:
    elsewhere = [url for url in visit.requests
                 if not url.startswith(("data:", "blob:"))
                 and urlsplit(url).netloc != urlsplit(visit.base).netloc]
    assert elsewhere == []
    assert not [p for p in visit.problems if "Content Security Policy" in p], visit.problems


async def test_a_supervisor_finds_a_call_listens_and_seeks_to_a_minute(
        api: Api, visit: Visit) -> None:
    wanted = await api.uploaded(long_wav(240), call_id="c-7", agent_id="A-7", queue="billing",
                                customer_id="cust-1", started_at="2026-11-23T14:05:00Z",
                                purposes=["training", "legal_protection"])
    await api.uploaded(wav_tone(3, frequency=500), call_id="c-8", agent_id="B-2",
                       queue="sales", started_at="2026-11-23T15:00:00Z", purposes=["training"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await expect(page).to_have_url(visit.base + "/recordings")
    cookie = next(c for c in await visit.context.cookies() if c["name"] == "rs_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # Yesterday's calls of agent A-7, in the reader's zone.
    await page.get_by_label("Agent").fill("A-7")
    await page.get_by_label("From date (Europe/Helsinki)").fill("2026-11-23")
    await page.get_by_label("To date (Europe/Helsinki)").fill("2026-11-23")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_text("1\u20131 of 1, newest call first")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("A-7"))
    await expect(row).to_contain_text("2026-11-23 16:05")  # 14:05 UTC in Helsinki
    await expect(row).to_contain_text("4:00")
    await expect(row).to_contain_text("training")
    await looked_at(page, "recordings")
    await row.get_by_role("link").click()
    await expect(page).to_have_url(visit.base + f"/recordings/{wanted['id']}")

    # Only the purposes the policy allows are offered.
    picker = page.get_by_label("Purpose of this listening")
    options = await picker.locator("option").all_inner_texts()
    assert options == ["training"]
    await expect(page.get_by_text("legal_protection: your roles may not access audio for "
                                  "legal_protection")).to_be_visible()
    await page.get_by_role("button", name="Listen").click()
    await until(page, "#player", "a => a.readyState >= 1")
    assert await page.eval_on_selector("#player", "a => Math.round(a.duration)") == 240

    # Jump to minute one: the browser asks for the bytes from there, answered 206.
    before = len(visit.media)
    await page.eval_on_selector("#seek", "s => { s.value = 60; "
                                "s.dispatchEvent(new Event('input', {bubbles: true})); }")
    await until(page, "#player", "a => !a.seeking && a.currentTime >= 60")
    await page.eval_on_selector("#player", "a => a.pause()")
    seeks = [(r, status) for r, status in visit.media[before:]
             if r and not r.startswith("bytes=0-")]
    assert seeks and all(status == 206 for _, status in seeks), visit.media
    await expect(page.get_by_label("Position")).not_to_have_value("0")
    await looked_at(page, "recording")

    streamed = await api.audit(recording_id=wanted["id"], action="stream")
    assert streamed and {(e["actor"], e["purpose"]) for e in streamed} == {("sanna", "training")}
    nothing_left_the_origin(visit)


async def test_a_recording_the_reader_may_not_hear_says_why(api: Api, visit: Visit) -> None:
    kept = await api.uploaded(wav_tone(2), purposes=["legal_protection"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    row = page.get_by_role("row", name=re.compile("Not playable"))
    await expect(row).to_contain_text("your roles may not access audio for legal_protection")
    await page.goto(visit.base + f"/recordings/{kept['id']}")
    await expect(page.get_by_text("You cannot listen to this recording now")).to_be_visible()
    await expect(page.get_by_role("button", name="Listen")).to_have_count(0)
    # The pages a supervisor has no role for are refused as a page, not offered in the menu.
    await expect(page.get_by_role("link", name="Audit")).to_have_count(0)
    await page.goto(visit.base + "/audit")
    await expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    nothing_left_the_origin(visit)


async def test_compliance_places_a_hold_sees_erasure_refused_and_releases_it(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(wav_tone(2), customer_id="cust-9",
                             purposes=["training", "legal_protection"])
    await sign_in(api, visit, "maija", ["compliance"])
    page = visit.page
    await page.get_by_role("link", name="Compliance").click()
    hold = page.get_by_role("form", name="Place a legal hold")
    await hold.get_by_label("Case reference").fill("CASE-2026-17")
    await hold.get_by_label("Reason").fill("dispute over a refund")
    await hold.get_by_label("Recording ids").fill(rec["id"])
    await hold.get_by_role("button", name="Place hold").click()
    # The hold's page: what it covers, by call.
    await expect(page.get_by_role("heading", name="Legal hold CASE-2026-17")).to_be_visible()
    covered = page.get_by_role("table", name="Newest call first")
    await expect(covered.get_by_role("row")).to_have_count(2)
    await looked_at(page, "legal-hold")
    await page.get_by_role("link", name="Compliance").click()
    holds = page.get_by_role("region", name="Legal holds")
    await expect(holds.get_by_role("row", name=re.compile("CASE-2026-17"))).to_be_visible()
    await looked_at(page, "compliance")

    # Erasing a held recording is refused, in words.
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    await expect(page.get_by_text("CASE-2026-17")).to_be_visible()
    erase = page.get_by_role("form", name="Erase")
    await erase.get_by_label("Reason for erasing").fill("customer asked")
    await erase.get_by_role("button", name="Erase now").click()
    await expect(erase.get_by_role("alert")).to_contain_text("legal hold: CASE-2026-17")
    status, body = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert status == 200 and body["state"] == "active"

    await page.get_by_role("link", name="Compliance").click()
    await page.get_by_label("Reason for releasing CASE-2026-17").fill("settled")
    await page.get_by_role("button", name="Release CASE-2026-17").click()
    await expect(page.get_by_text("No legal hold is in force.")).to_be_visible()
    released = page.get_by_role("table", name=re.compile("released"))
    await expect(released.get_by_role("row", name=re.compile("CASE-2026-17"))).to_contain_text(
        "maija")
    await expect(released).to_contain_text("settled")
    status, body = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert body["legal_holds"] == []

    # The subject's page erases what may go and says per recording what happened.
    await page.get_by_label("Customer id", exact=True).first.fill("cust-9")
    await page.get_by_role("button", name="Open the subject's page").click()
    await expect(page.get_by_role("heading", name="Customer cust-9")).to_be_visible()
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download export (zip)").click()
    download = await download_info.value
    assert re.fullmatch(r"subject-export-.*\.zip", download.suggested_filename)
    with zipfile.ZipFile(await download.path()) as export:
        assert any(rec["id"] in name for name in export.namelist())
    await page.get_by_label("Reason for erasing").fill("erasure request")
    await page.get_by_role("button", name="Erase the subject's recordings").click()
    await expect(page).to_have_url(re.compile(r"/subject-requests/dsr_"))
    outcomes = page.get_by_role("table", name="Erasure, per recording")
    await expect(outcomes.get_by_role("row").filter(has_text="erased")).to_have_count(1)
    await expect(page.get_by_text("Completed", exact=True)).to_be_visible()
    await looked_at(page, "subject")
    nothing_left_the_origin(visit)


async def test_compliance_holds_a_selection_of_search_results_and_one_recording(
        api: Api, visit: Visit) -> None:
    recs = [await api.uploaded(wav_tone(1, frequency=300 + i), agent_id="A-3", call_id=f"h-{i}",
                               started_at=f"2026-11-2{i}T10:00:00Z") for i in range(4)]
    await sign_in(api, visit, "maija", ["compliance"])
    page = visit.page
    await page.get_by_label("Agent").fill("a-3")
    await page.get_by_label("Agent").press("Enter")
    await expect(page.get_by_text("1\u20134 of 4")).to_be_visible()
    # Tick the two newest calls by keyboard.
    await page.get_by_role("checkbox").first.focus()
    await page.keyboard.press("Space")
    await page.get_by_role("checkbox").nth(1).check()
    selection = page.get_by_role("form", name="Place a legal hold on the selected calls")
    await selection.get_by_label("Case reference").fill("LIT-9")
    await selection.get_by_label("Reason").fill("claim by the customer")
    await looked_at(page, "recordings-selected")
    await selection.get_by_role("button", name="Place hold on the selected").click()
    await expect(page.get_by_role("heading", name="Legal hold LIT-9")).to_be_visible()
    covered = page.get_by_role("table", name="Newest call first")
    await expect(covered.get_by_role("row")).to_have_count(3)
    status, hold = await api.call("GET", "/v1/legal-holds")
    assert status == 200
    assert set(hold["items"][0]["recording_ids"]) == {recs[3]["id"], recs[2]["id"]}

    # One more from a recording's own page; the recording links to its holds.
    await page.goto(visit.base + f"/recordings/{recs[0]['id']}")
    one = page.get_by_role("form", name="Place a legal hold on this recording")
    await one.get_by_label("Case reference of a legal hold").fill("LIT-10")
    await one.get_by_label("Reason for the hold").fill("regulator's inquiry")
    await one.get_by_role("button", name="Place legal hold").click()
    await expect(page.get_by_role("heading", name="Legal hold LIT-10")).to_be_visible()
    await page.get_by_role("link", name=re.compile("2026-11-20")).click()
    await page.get_by_role("link", name="LIT-10").click()
    await page.get_by_label("Reason for releasing LIT-10").fill("inquiry closed")
    await page.get_by_role("button", name="Release LIT-10").click()
    await expect(page.get_by_text(re.compile("Released .* by maija: inquiry closed"))
                 ).to_be_visible()
    nothing_left_the_origin(visit)


async def test_an_auditor_sees_the_log_verified(api: Api, visit: Visit) -> None:
    await api.uploaded(wav_tone(1))
    await sign_in(api, visit, "aino", ["auditor"])
    page = visit.page
    await expect(page).to_have_url(visit.base + "/audit")
    await page.get_by_label("Action").fill("upload")
    await page.get_by_role("button", name="Filter").click()
    entries = page.get_by_role("region", name="Entries")
    await expect(entries.get_by_role("row", name=re.compile("upload"))).to_have_count(1)
    await page.get_by_role("button", name="Verify now").click()
    await expect(page.get_by_role("status")).to_contain_text("Verified")
    await expect(page.get_by_label("Action")).to_have_value("upload")  # the filter stays
    await looked_at(page, "audit")
    # Signing out ends the session: the console asks to sign in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/sign-in$"))
    await page.goto(visit.base + "/audit")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    nothing_left_the_origin(visit)


# What browsers drop or read as "/" inside a URL, between the two slashes of "//host".
_SQUEEZED = st.lists(st.sampled_from(["\t", "\n", "\r", "\r\n", "\\", "/"]), min_size=1,
                     max_size=3).map("".join)
OPEN_REDIRECTS = [
    "/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example/", "/\t\\evil.example/",
    *generated(st.builds(lambda lead, mid, tail: f"{lead}/{mid}evil.example/{tail}",
                         st.sampled_from(["", " ", "\t", "\x01"]), _SQUEEZED,
                         st.sampled_from(["", "x?y=1", "#f"])), 16),
]


async def test_after_sign_in_a_browser_never_leaves_for_another_site(
        api: Api, visit: Visit) -> None:
    await people.create_user(api.services.database, "sanna", ["supervisor"], PASSWORD,
                             api.clock())
    page = visit.page
    for target in OPEN_REDIRECTS:
        await page.goto(visit.base + "/sign-in?next=" + quote(target, safe=""))
        await page.get_by_label("Account name").fill("sanna")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).not_to_have_url(re.compile(r"/sign-in"))
        assert urlsplit(page.url).netloc == urlsplit(visit.base).netloc, (target, page.url)
    nothing_left_the_origin(visit)
    # A path of this site still is where the person goes.
    await page.goto(visit.base + "/sign-in?next=" + quote("/audit?x=1", safe=""))
    await page.get_by_label("Account name").fill("sanna")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/audit\?x=1$"))


async def test_the_accessibility_audit_finds_what_is_wrong(visit: Visit) -> None:
    # The check every page passes, shown able to fail: an image with no text, an unlabelled
    # field, grey on grey.
    await visit.page.set_content(
        '<html lang="en"><title>t</title><main><img src="data:,"><input>'
        '<p style="color:#bbb;background:#ccc">faint</p></main></html>')
    found = " ".join(await axe_violations(visit.page))
    assert "image-alt" in found and "label" in found and "color-contrast" in found


async def test_a_supervisor_sorts_pages_back_and_finds_an_agent_typed_in_lower_case(
        api: Api, visit: Visit) -> None:
    for i in range(30):
        await api.uploaded(wav_tone(0.2 + i / 50, frequency=200 + i), call_id=f"call-{i}",
                           agent_id="A-12" if i < 27 else "B-1",
                           started_at=f"2026-11-{1 + i % 28:02d}T{8 + i // 28:02d}:00:00Z")
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await page.get_by_label("Agent").fill("a-1")
    await page.get_by_label("Order").select_option(label="Longest first")
    await page.get_by_label("Agent").press("Enter")
    await expect(page.get_by_text("1\u201325 of 27, longest first")).to_be_visible()
    await expect(page.get_by_role("row").nth(1)).to_contain_text("A-12")
    await looked_at(page, "recordings-sorted")
    await page.get_by_role("link", name="Next page").click()
    await expect(page.get_by_text("26\u201327 of 27, longest first")).to_be_visible()
    await page.get_by_role("link", name="Previous page").click()
    await expect(page.get_by_text("1\u201325 of 27, longest first")).to_be_visible()
    # Away and back: the console remembers the last search.
    await page.goto(visit.base + "/")
    await expect(page.get_by_label("Agent")).to_have_value("a-1")
    await expect(page.get_by_label("Order")).to_have_value("-duration")
    await page.get_by_role("link", name="Clear").click()
    await expect(page.get_by_text("1\u201325 of 30, newest call first")).to_be_visible()
    nothing_left_the_origin(visit)


async def test_an_auditor_reads_the_newest_entries_of_a_call_and_downloads_them(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(wav_tone(1), call_id="call-77")
    await api.audio(rec["id"], "training", "supervisor")
    await api.uploaded(wav_tone(1, frequency=500), call_id="call-78")
    await sign_in(api, visit, "aino", ["auditor"])
    page = visit.page
    await page.get_by_label("Call id").fill("call-77")
    await page.get_by_label("Call id").press("Enter")
    entries = page.get_by_role("region", name="Entries")
    rows = entries.get_by_role("row")
    await expect(rows.nth(1)).to_contain_text("stream")  # the newest first
    await expect(rows.nth(2)).to_contain_text("upload")
    await looked_at(page, "audit-by-call")
    await page.get_by_role("link", name="show the oldest first").click()
    await expect(rows.nth(1)).to_contain_text("upload")
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Download this view as CSV").click()
    saved = await (await download.value).path()
    text = saved.read_text()
    assert text.startswith("seq,at,actor") and rec["id"] in text and "call-78" not in text
    exported = await api.audit(action="audit_export")
    assert [e["actor"] for e in exported] == ["aino"]


async def test_every_page_reads_on_a_phone_without_sideways_scrolling(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(wav_tone(2), call_id="call-with-a-rather-long-identifier-0001",
                             agent_id="A-7", queue="billing-and-invoicing-enquiries",
                             customer_id="cust-4", purposes=["training", "legal_protection"])
    await api.audio(rec["id"], "training", "supervisor")
    _, hold = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "LIT-2026-000123", "reason": "a claim", "recording_ids": [rec["id"]]})
    _, run = await api.call("POST", "/v1/purge-runs", {"dry_run": True})
    _, request = await api.call("POST", "/v1/subject-requests", {
        "type": "access", "customer_id": "cust-4", "request_reference": "DSR-2026-0042"})
    await sign_in(api, visit, "maija", ["compliance"])
    page = visit.page
    await page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/recordings?agent_id=a", f"/recordings/{rec['id']}", "/compliance",
                 f"/legal-holds/{hold['id']}", "/subjects/cust-4",
                 f"/subject-requests/{request['id']}", f"/purge-runs/{run['run_id']}",
                 "/audit", "/agents/A-7", "/coverage",
                 f"/recordings/{rec['id']}/listenings"):
        await page.goto(visit.base + path)
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        sideways = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert sideways <= 0, f"{path} scrolls {sideways} px sideways at 390 px"
        name = "phone" + re.sub(r"[^a-z]+", "-", path.split("?")[0])
        await looked_at(page, name.rstrip("-"))
    # Still a table to a screen reader, with each cell's column named on the page.
    rows = page.get_by_role("table", name=re.compile("Listenings")).get_by_role("row")
    await expect(rows.filter(has_text="supervisor")).to_contain_text("training")
    nothing_left_the_origin(visit)


async def test_a_supervisor_listens_by_keyboard_over_the_waveform_past_an_expired_link(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(long_wav(240), call_id="c-keys", agent_id="A-7",
                             purposes=["training"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    await expect(page.get_by_text("Space play or pause")).to_be_visible()  # keys on the page
    await page.get_by_role("button", name="Listen").click()
    await until(page, "#player", "a => a.readyState >= 1 && !a.paused")
    waved = await api.audit(recording_id=rec["id"], action="waveform")
    assert [(e["actor"], e["purpose"]) for e in waved] == [("sanna", "training")]
    # The waveform is drawn: the canvas holds dark bars, not only its background.
    painted = await page.eval_on_selector("#wave", """c => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert painted > 800 * 64 // 4

    # Keys: pause, speed, and steps of 5 and 30 seconds.
    await page.locator("h1").click()
    await page.keyboard.press("Space")
    await until(page, "#player", "a => a.paused")
    await page.keyboard.press("]")
    await page.keyboard.press("]")
    await page.keyboard.press("[")
    await expect(page.get_by_label("Speed")).to_have_value("1.25")
    assert await page.eval_on_selector("#player", "a => a.playbackRate") == 1.25
    start = await page.eval_on_selector("#player", "a => a.currentTime")
    await page.keyboard.press("Shift+ArrowRight")
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowLeft")
    await page.get_by_role("button", name="Ahead 10 s").click()
    moved = await page.eval_on_selector("#player", "a => a.currentTime")
    assert abs(moved - (start + 40)) < 0.5
    # A click on the waveform goes there: three quarters in is 3:00.
    box = await page.locator(".timeline").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    at = await page.eval_on_selector("#player", "a => a.currentTime")
    assert abs(at - 180) < 3
    await expect(page.get_by_label("Position")).to_have_attribute(
        "aria-valuetext", re.compile(r"^3:0\d of 4:00$"))

    # Paused longer than the link lives (on both clocks: the service's, and the browser's,
    # which the player counts the link's life by): playing goes on where it was, on a new
    # link, whatever the browser has buffered.
    ttl = api.services.config.link_ttl_seconds
    api.clock.advance(seconds=ttl + 1)
    await page.clock.install()
    await page.clock.fast_forward((ttl + 1) * 1000)
    await page.keyboard.press("Shift+ArrowRight")  # 3:30
    await expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()
    await page.get_by_role("button", name="Play", exact=True).click()
    try:
        # Seen taking 20 s and more in Chromium after a 403 on the old link (to look into).
        await until(page, "#player", "a => !a.paused && a.currentTime >= 209", seconds=60)
    except AssertionError:
        state = await page.eval_on_selector("#player", "a => [a.currentTime, a.paused, "
                                            "a.readyState, a.error && a.error.code]")
        raise AssertionError(f"not resumed: {state}, {visit.media[-4:]}") from None
    links = await api.audit(recording_id=rec["id"], action="playback_link")
    assert [e["detail"].get("renewal", False) for e in links] == [False, True]
    assert not [p for p in visit.problems if "could not be played" in p]
    await looked_at(page, "player")
    nothing_left_the_origin(visit)


async def test_a_supervisor_marks_two_moments_and_goes_back_to_one(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(long_wav(60), call_id="c-moments", purposes=["training"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    await page.get_by_role("button", name="Listen").click()
    await until(page, "#player", "a => a.readyState >= 1")
    await page.get_by_role("button", name="Pause").click()
    await page.eval_on_selector("#seek", "s => { s.value = 12; "
                                "s.dispatchEvent(new Event('input', {bubbles: true})); }")
    mark = page.get_by_role("form", name="Mark a moment")
    await mark.get_by_label("Note for a moment here").fill("greets without the company name")
    await mark.get_by_role("button", name="Mark moment").click()
    await expect(page.get_by_role("button", name="Go to 0:12")).to_be_visible()
    await page.eval_on_selector("#seek", "s => { s.value = 30; "
                                "s.dispatchEvent(new Event('input', {bubbles: true})); }")
    await mark.get_by_label("Note for a moment here").fill("promises a callback, never logged")
    await mark.get_by_label("Until").fill("0:41")
    await mark.get_by_label("Note for a moment here").press("Enter")
    await expect(page.get_by_role("button", name="Go to 0:30\u20130:41")).to_be_visible()
    await looked_at(page, "moments")
    await page.get_by_role("button", name="Go to 0:12").click()
    at = await page.eval_on_selector("#player", "a => a.currentTime")
    assert 12 <= at < 14
    await page.get_by_role("button", name="Remove the moment at 0:12").click()
    await expect(page.get_by_role("button", name="Go to 0:12")).to_have_count(0)
    status, _ = await api.call("GET", f"/v1/recordings/{rec['id']}/moments?purpose=training",
                                  role="compliance")
    assert status == 403  # compliance is not a training role
    kept = await api.audit(recording_id=rec["id"], action="moment_add")
    assert [e["actor"] for e in kept] == ["sanna", "sanna"]
    nothing_left_the_origin(visit)


async def test_a_supervisor_scores_a_call_and_sees_the_agents_trend(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(wav_tone(3), call_id="c-score", agent_id="A-7",
                             purposes=["quality_review"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    await page.get_by_text("Score this call on “Standard call review”").click()
    form = page.get_by_role("form", name="Score on Standard call review")
    for question, answer in (("Greeted the customer", "Yes"), ("Verified the customer", "Yes"),
                             ("Understood what the customer", "5"), ("Resolved it", "4"),
                             ("Courteous", "3"), ("Gave the required disclosures", "Yes")):
        group = form.get_by_role("group", name=re.compile(question))
        await group.get_by_label(answer, exact=True).check()
    await form.get_by_label("What went well").fill("calm with an angry customer")
    await looked_at(page, "evaluate")
    await form.get_by_role("button", name="Save the evaluation").click()
    scored = page.get_by_role("table", name="This call's evaluations")
    await expect(scored.get_by_role("row", name=re.compile("87.5"))).to_contain_text(
        "calm with an angry customer")
    await page.get_by_role("link", name="A-7").click()
    await expect(page.get_by_role("heading", name="Agent A-7")).to_be_visible()
    await expect(page.get_by_role("img", name=re.compile("Standard call review: weekly "
                                                          "average score of 1 evaluation"))
                 ).to_be_visible()
    await looked_at(page, "agent")
    nothing_left_the_origin(visit)


async def test_a_supervisor_reviews_a_call_and_shares_a_clip_the_agent_disputes_and_plays(
        api: Api, visit: Visit) -> None:
    """Issue 23 end to end: the supervisor listens, marks two moments, scores the agent's
    call and clips another agent's good call into a collection shared with the agent; the
    agent signs in, sees the score, disputes it, plays the clip and is refused the rest of
    that call; consent for training is withdrawn and the clip says why it no longer plays."""
    own = await api.uploaded(long_wav(40), call_id="c-review", agent_id="A-7",
                             purposes=["quality_review", "training"])
    example = await api.uploaded(wav_tone(8, frequency=350), call_id="c-example",
                                 agent_id="A-3", purposes=["training", "legal_protection"])
    await sign_in(api, visit, "sanna", ["supervisor"])
    page = visit.page
    await page.get_by_role("link", name="Training").click()
    new = page.get_by_role("form", name="New collection")
    await new.get_by_label("Name").fill("Calm openings")
    await new.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("link", name="Calm openings")).to_be_visible()

    await page.goto(visit.base + f"/recordings/{own['id']}")
    await page.get_by_label("Purpose of this listening").select_option("training")
    await page.get_by_role("button", name="Listen").click()
    await until(page, "#player", "a => a.readyState >= 1")
    await page.get_by_role("button", name="Pause").click()
    mark = page.get_by_role("form", name="Mark a moment")
    for at, note in ((5, "no greeting"), (20, "rushes the customer")):
        await page.eval_on_selector("#seek", f"s => {{ s.value = {at}; "
                                    "s.dispatchEvent(new Event('input', {bubbles: true})); }")
        await mark.get_by_label("Note for a moment here").fill(note)
        await mark.get_by_role("button", name="Mark moment").click()
        await expect(page.get_by_role("button", name=f"Go to 0:{at:02d}")).to_be_visible()
    await page.get_by_text("Score this call on “Standard call review”").click()
    form = page.get_by_role("form", name="Score on Standard call review")
    for question, answer in (("Greeted the customer", "No"), ("Verified the customer", "Yes"),
                             ("Understood what the customer", "4"), ("Resolved it", "4"),
                             ("Courteous", "2"), ("Gave the required disclosures", "Yes")):
        await form.get_by_role("group", name=re.compile(question)).get_by_label(
            answer, exact=True).check()
    await form.get_by_role("button", name="Save the evaluation").click()
    scored = page.get_by_role("table", name="This call's evaluations")
    await expect(scored.get_by_role("row", name=re.compile("70.0"))).to_be_visible()

    await page.goto(visit.base + f"/recordings/{example['id']}")
    clip = page.get_by_role("form", name="Add a clip to a training collection")
    await clip.get_by_label("Collection").select_option(label="Calm openings")
    await clip.get_by_label("From (seconds)").fill("2")
    await clip.get_by_label("To (seconds)").fill("5")
    await clip.get_by_label("Note").fill("how A-3 opens")
    await clip.get_by_role("button", name="Add the clip").click()
    await expect(clip.get_by_role("button", name="Add the clip")).to_be_enabled()
    await page.get_by_role("link", name="Training").click()
    await page.get_by_role("link", name="Calm openings").click()
    share = page.get_by_role("form", name="Share with an agent")
    await share.get_by_label("Agent id").fill("A-7")
    await share.get_by_role("button", name="Share").click()
    await expect(page.get_by_role("button", name="Stop sharing")).to_be_visible()
    await expect(page.get_by_text("how A-3 opens")).to_be_visible()
    await looked_at(page, "collection")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/sign-in$"))

    await sign_in(api, visit, "aada", ["agent"], agent_id="A-7")
    await expect(page).to_have_url(re.compile(r"/my-evaluations$"))
    await looked_at(page, "my-evaluations")
    await page.get_by_role("table").get_by_role("link").first.click()
    await expect(page.get_by_role("heading", name="Evaluation: 70.0 of 100")).to_be_visible()
    answer = page.get_by_role("form", name="Answer")
    await answer.get_by_label("Answer").select_option("dispute")
    await answer.get_by_label("Comment").fill("I greeted at 0:01, listen again")
    await answer.get_by_role("button", name="Send").click()
    await expect(page.locator("#state")).to_contain_text("disputed")
    await looked_at(page, "evaluation-disputed")

    await page.get_by_role("link", name="Training").click()
    await page.get_by_role("link", name="Calm openings").click()
    player = page.get_by_role("listitem").filter(has_text="how A-3 opens").locator("audio")
    await player.evaluate("a => a.play()")
    await until(page, "li.clip audio", "a => a.readyState >= 1 && a.currentTime > 0")
    assert round(await player.evaluate("a => a.duration"), 1) == 3.0  # the span, no more
    await looked_at(page, "collection-agent")
    # The rest of that call is not the agent's to hear, by any door.
    rest = await page.request.get(visit.base + f"/v1/recordings/{example['id']}/audio"
                                  "?purpose=training")
    assert rest.status == 403 and (await rest.json())["reason"] == "not_your_call"
    src = await player.get_attribute("src")
    past = await page.request.get(visit.base + str(src), headers={"Range": "bytes=999999-"})
    assert past.status == 416

    status, _ = await api.call("DELETE",
                               f"/v1/recordings/{example['id']}/purposes/training",
                               {"reason": "the customer withdrew consent"})
    assert status == 200
    await page.reload()
    await expect(page.get_by_role("status")).to_contain_text(
        "Does not play: training was withdrawn for this recording")
    await expect(page.locator("li.clip audio")).to_have_count(0)
    again = await page.request.get(visit.base + str(src))
    assert again.status == 403
    nothing_left_the_origin(visit)


async def test_compliance_redacts_a_span_and_the_recording_says_so(
        api: Api, visit: Visit) -> None:
    original = wav_tone(4)
    rec = await api.uploaded(original, call_id="c-console-redact",
                             purposes=["training", "legal_protection"])
    await sign_in(api, visit, "maija", ["compliance"])
    page = visit.page
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    form = page.get_by_role("form", name="Redact a span")
    await form.get_by_label("Redact from").fill("0:01.5")
    await form.get_by_label("Redact to").fill("0:02")
    await form.get_by_label("Reason for redacting").select_option("pci")
    await form.get_by_role("button", name="Redact", exact=True).click()
    details = page.get_by_role("region", name="Details")
    await expect(details).to_contain_text("0:01.5\u20130:02 (pci), by maija")  # an en dash
    await looked_at(page, "recording-redacted")
    [done] = (await api.call("GET", f"/v1/recordings/{rec['id']}/redactions",
                             role="auditor"))[1]["items"]
    assert done["spans"] == [{"start_ms": 1500, "end_ms": 2000, "channel": None}]
    # A span the call does not have is refused, in words, and nothing changes.
    await form.get_by_label("Redact from").fill("0:03")
    await form.get_by_label("Redact to").fill("9:00")
    await form.get_by_role("button", name="Redact", exact=True).click()
    await expect(form.get_by_role("alert")).to_contain_text("past the recording's end")
    await form.get_by_label("Redact to").fill("soon")
    await form.get_by_role("button", name="Redact", exact=True).click()
    await expect(form.get_by_role("alert")).to_contain_text("Give each time as m:ss")
    listed = (await api.call("GET", f"/v1/recordings/{rec['id']}/redactions",
                             role="auditor"))[1]["items"]
    assert len(listed) == 1
    nothing_left_the_origin(visit)


async def _seek(page: Page, seconds: float) -> None:
    await page.eval_on_selector("#seek", f"s => {{ s.value = {seconds}; "
                                "s.dispatchEvent(new Event('input', {bubbles: true})); }")


async def _red_columns(page: Page) -> list[int]:
    """The waveform's columns where the span to redact is drawn (red over the bars)."""
    return list(await page.eval_on_selector("#wave", """c => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        const columns = [];
        for (let x = 0; x < c.width; x++) {
            const i = (2 * c.width + x) * 4;  // a row near the top, above the bars
            if (d[i] > 150 && d[i + 1] < 120 && d[i + 3] > 0) columns.push(x);
        }
        return columns; }"""))


async def test_compliance_chooses_a_span_on_the_waveform_hears_it_redacted_then_redacts(
        api: Api, visit: Visit) -> None:
    rec = await api.uploaded(long_wav(60), call_id="c-span",
                             purposes=["legal_protection"])
    await sign_in(api, visit, "maija", ["compliance"])
    page = visit.page
    await page.goto(visit.base + f"/recordings/{rec['id']}")
    form = page.get_by_role("form", name="Redact a span")
    await expect(form.get_by_role("button", name="Span starts here")).to_be_hidden()
    await page.get_by_role("button", name="Listen").click()
    await until(page, "#player", "a => a.readyState >= 1")
    await page.get_by_role("button", name="Pause").click()

    # At the player's position: 0:12 to 0:15, drawn in red across those columns.
    await _seek(page, 12)
    await form.get_by_role("button", name="Span starts here").click()
    await _seek(page, 15)
    await form.get_by_role("button", name="Span ends here").click()
    await expect(form.get_by_label("Redact from")).to_have_value("0:12.0")
    await expect(form.get_by_label("Redact to")).to_have_value("0:15.0")
    red = await _red_columns(page)
    assert red and abs(red[0] - 800 * 12 / 60) <= 2 and abs(red[-1] - 800 * 15 / 60) <= 3

    # Shift and a drag across the waveform, from a quarter to a half: 0:15 to 0:30; the
    # player stays where it was.
    await page.locator(".timeline").scroll_into_view_if_needed()
    box = await page.locator(".timeline").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.keyboard.down("Shift")
    await page.mouse.move(box["x"] + box["width"] * 0.25, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    await page.mouse.up()
    await page.keyboard.up("Shift")
    start = await form.get_by_label("Redact from").input_value()
    end = await form.get_by_label("Redact to").input_value()
    assert re.fullmatch(r"0:1[45]\.\d", start) and re.fullmatch(r"0:(29|30)\.\d", end), (
        start, end)
    assert abs(await page.eval_on_selector("#player", "a => a.currentTime") - 15) < 0.5
    await expect(form.get_by_role("status")).to_contain_text(f"Span {start}\u2013{end} chosen")

    # Typed back to a short span, heard in place: the call before it, the fill, the call
    # after it, then the preview stops by itself.
    await form.get_by_label("Redact from").fill("0:12")
    await form.get_by_label("Redact to").fill("0:14")
    await form.get_by_label("Replace with").select_option("tone")
    await form.get_by_role("button", name="Preview the redaction").click()
    status = form.get_by_role("status")
    await expect(status).to_have_text("Preview: the call before the span")
    assert 9.5 <= await page.eval_on_selector("#player", "a => a.currentTime") < 12
    await expect(status).to_have_text("Preview: a tone in place of 0:12.0\u20130:14.0")
    assert 12 <= await page.eval_on_selector("#player", "a => a.currentTime") < 14.5
    await looked_at(page, "redaction-preview")
    await expect(status).to_have_text("Preview: the call after the span")
    await expect(status).to_contain_text("Preview ended", timeout=10_000)
    assert await page.eval_on_selector("#player", "a => a.paused")
    assert 16 <= await page.eval_on_selector("#player", "a => a.currentTime") < 17

    await form.get_by_role("button", name="Redact", exact=True).click()
    details = page.get_by_role("region", name="Details")
    await expect(details).to_contain_text("0:12\u20130:14 (pci, a tone), by maija")
    [done] = (await api.call("GET", f"/v1/recordings/{rec['id']}/redactions",
                             role="auditor"))[1]["items"]
    assert done["spans"] == [{"start_ms": 12_000, "end_ms": 14_000, "channel": None}]
    assert done["fill"] == "tone"
    nothing_left_the_origin(visit)
