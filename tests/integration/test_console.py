"""The console's pages over HTTP (the browser tests drive the same pages in Chromium):
who sees what, errors as pages, the policy's words, the audit of every read."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from recordings_service import people
from recordings_service.auth import create_token
from recordings_service.console.routes import PAGES
from recordings_service.middlewares import CONTENT_SECURITY_POLICY
from storage.schema import audit_entries
from tests.audio import wav_tone
from tests.conftest import Api

PASSWORD = "plum-orchard-vinegar-42"


async def signed_in(api: Api, name: str, roles: list[str], agent_id: str | None = None,
                    ) -> None:
    """``api.client`` now carries a session cookie for a person with ``roles``."""
    await people.create_user(api.services.database, name, roles, PASSWORD, api.clock(),
                             agent_id)
    response = await api.client.post("/v1/session", json={"name": name, "password": PASSWORD})
    assert response.status == 200


async def page(api: Api, path: str, **kwargs: Any) -> tuple[int, str]:
    response = await api.client.get(path, allow_redirects=False, **kwargs)
    return response.status, await response.text()


async def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(api: Api) -> None:
    response = await api.client.get("/recordings?agent_id=A-7", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/sign-in?next=%2Frecordings%3Fagent_id%3DA-7"
    status, html = await page(api, "/sign-in?next=/recordings%3Fagent_id%3DA-7")
    assert status == 200 and 'data-next="/recordings?agent_id=A-7"' in html


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example/"])
async def test_sign_in_never_sends_the_browser_to_another_site(api: Api, target: str) -> None:
    _, html = await page(api, "/sign-in", params={"next": target})
    assert 'data-next="/"' in html


async def test_pages_carry_a_strict_policy_and_no_outside_resource(api: Api) -> None:
    await signed_in(api, "sanna", ["supervisor"])
    response = await api.client.get("/recordings")
    html = await response.text()
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    # No inline script or style, no address elsewhere.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    for asset in ("/static/console.js", "/static/console.css", "/static/favicon.svg"):
        served = await api.client.get(asset)
        assert served.status == 200, asset
        assert "http://" not in (await served.text()).replace("http://www.w3.org/2000/svg", "")


async def test_a_page_for_other_roles_is_an_html_refusal_and_is_audited(api: Api) -> None:
    await signed_in(api, "sanna", ["supervisor"])
    response = await api.client.get("/audit", allow_redirects=False)
    assert response.status == 403
    assert response.content_type == "text/html"
    html = await response.text()
    assert "This needs one of the roles: auditor, compliance." in html
    denied = await api.audit(actor="sanna", outcome="denied")
    assert [(e["action"], e["reason"]) for e in denied] == [("audit_read", "missing_role")]


async def test_console_errors_are_pages_and_api_errors_stay_problems(api: Api) -> None:
    await signed_in(api, "sanna", ["supervisor"])
    status, html = await page(api, "/recordings/nosuchrecording")
    assert status == 404 and "<h1>Not Found</h1>" in html
    status, html = await page(api, "/recordings?from=yesterday")
    assert status == 400 and "From must be a date such as 2026-11-24." in html
    api_answer = await api.client.get("/v1/recordings/nosuchrecording")
    assert api_answer.content_type == "application/problem+json"


async def test_search_shows_what_the_reader_may_listen_for_and_why_not(api: Api) -> None:
    audio = wav_tone(2)
    playable = await api.uploaded(audio, call_id="c-1", agent_id="A-7", queue="billing",
                                  purposes=["training", "legal_protection"])
    await api.uploaded(wav_tone(2, frequency=500), call_id="c-2", agent_id="A-7",
                       queue="billing", purposes=["legal_protection"])
    await api.uploaded(wav_tone(2, frequency=600), call_id="c-3", agent_id="B-2",
                       queue="sales", purposes=["training"])
    await signed_in(api, "sanna", ["supervisor"])
    status, html = await page(api, "/recordings", params={"agent_id": "A-7", "queue": "billing"})
    assert status == 200
    assert "1\u20132 of 2, newest call first" in html
    assert f'href="/recordings/{playable["id"]}"' in html
    assert "<td>training</td>" in html
    assert "Not playable: your roles may not access audio for legal_protection" in html
    assert "B-2" not in html
    # The same words as the API's allowed_purposes, for the same reader.
    searched = await api.audit(actor="sanna", action="search")
    assert searched[-1]["detail"]["filter"] == {"agent_id": "A-7", "queue": "billing",
                                                "state": "active", "prefix": True}


async def test_dates_are_read_in_the_readers_zone(api: Api) -> None:
    # 23:30 on the 23rd in UTC is already the 24th in Helsinki (UTC+2 in November).
    await api.uploaded(wav_tone(1), call_id="late", started_at="2026-11-23T23:30:00Z")
    await signed_in(api, "sanna", ["supervisor"])
    params = {"from": "2026-11-24", "to": "2026-11-24"}
    _, helsinki = await page(api, "/recordings", params=params,
                             cookies={"rs_tz": "Europe/Helsinki"})
    assert "1\u20131 of 1," in helsinki
    assert "2026-11-24 01:30" in helsinki and "Europe/Helsinki" in helsinki
    _, utc = await page(api, "/recordings", params=params)
    assert "None of 0," in utc
    _, nonsense = await page(api, "/recordings", params=params, cookies={"rs_tz": "../../etc"})
    assert "None of 0," in nonsense


async def test_the_recording_page_explains_refusals_and_shows_who_accessed_it(api: Api) -> None:
    rec = await api.uploaded(wav_tone(2), purposes=["training", "legal_protection"])
    assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    await signed_in(api, "maija", ["compliance"])
    status, html = await page(api, f"/recordings/{rec['id']}")
    assert status == 200
    assert '<option value="legal_protection">legal_protection</option>' in html
    assert "<strong>training</strong>: your roles may not access audio for training" in html
    assert "Who accessed this" in html and "<td>supervisor</td><td>stream</td>" in html
    assert (await api.audit(actor="maija", action="view_metadata"))[-1]["recording_id"] == \
        rec["id"]


async def test_the_compliance_page_charts_what_falls_due_and_who_listened(api: Api) -> None:
    rec = await api.uploaded(wav_tone(1), purposes=["training"])  # kept 6 months
    for _ in range(3):
        assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    await signed_in(api, "maija", ["compliance"])
    status, html = await page(api, "/compliance", cookies={"rs_tz": "Europe/Helsinki"})
    assert status == 200
    assert "next 12 months (1 in all)" in html
    assert re.findall(r"<rect [^>]*><title>([^<]*)</title>", html) == [
        "2027-05: 1", "2026-11-24 training: 3"]
    # Months are the reader's: the first bar's month is this one in Helsinki.
    assert re.search(r'<text x="[0-9.]+" y="195" text-anchor="middle">2026-11</text>', html)
    response = await api.client.get("/subjects", params={"customer_id": "cust/1"},
                                    allow_redirects=False)
    assert response.headers["Location"] == "/subjects/cust%2F1"
    # The next day: yesterday's bar as it was, today's growing with each access.
    api.clock.advance(days=1)
    await signed_in(api, "maija-2", ["compliance"])  # the first session ended meanwhile
    for expected in (1, 2):
        assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
        _, html = await page(api, "/compliance")
        assert re.findall(r"<rect [^>]*><title>([^<]*)</title>", html)[1:] == [
            "2026-11-24 training: 3", f"2026-11-25 training: {expected}"]


async def test_a_browser_returning_from_single_sign_on_lands_on_a_page(api: Api) -> None:
    # Without a configured provider the callback is a 404, as a page for a browser.
    response = await api.client.get("/v1/session/oidc/callback",
                                    headers={"Accept": "text/html"}, allow_redirects=False)
    assert response.status == 404


async def test_the_audit_page_turns_red_when_the_log_was_tampered_with(api: Api) -> None:
    await api.uploaded(wav_tone(1))
    await signed_in(api, "aino", ["auditor"])
    _, html = await page(api, "/audit", params={"verify": "now"})
    assert 'class="status ok" role="status">Verified' in html
    async with api.services.database.write() as conn:
        await conn.execute(update(audit_entries).where(audit_entries.c.seq == 1)
                           .values(actor="someone-else"))
    _, html = await page(api, "/audit", params={"verify": "now"})
    assert 'class="status failed" role="alert"><p>Verification FAILED at entry 1.' in html
    assert (await api.audit(action="audit_verify"))[-1]["detail"]["ok"] is False


HOSTILE = ["", " ", "\x00", "../../etc/passwd", "x" * 5000, "ÅÄÖ", "2026-02-30",
           "0001-01-01", "9999-12-31", "0000-01-01", "2026-1-1", "-1", "%00", "<script>"]


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Adak"])
async def test_no_page_input_is_a_server_error(api: Api, zone: str) -> None:
    """Every query field of every page, with values a fuzzer or a curious person sends:
    an answer, a 400 page or a 404 page, never a 500 and never the value unescaped."""
    await api.uploaded(wav_tone(1), customer_id="cust-1")
    await signed_in(api, "maija", ["compliance", "auditor"])
    fields = {"/recordings": ["agent_id", "queue", "customer_id", "call_id", "from", "to",
                              "cursor"],
              "/audit": ["actor", "action", "recording_id", "purpose", "outcome", "from", "to",
                         "cursor", "verify"],
              "/subjects": ["customer_id"], "/sign-in": ["next"], "/compliance": ["x"]}
    for path, names in fields.items():
        for name in names:
            for value in HOSTILE:
                response = await api.client.get(path, params={name: value},
                                                cookies={"rs_tz": zone},
                                                allow_redirects=False)
                assert response.status in (200, 303, 400), (path, name, value, response.status)
                assert "<script>" not in (await response.text()).replace(
                    '<script src="/static/console.js" defer></script>', ""), (path, name)
    for value in HOSTILE[1:]:
        response = await api.client.get("/subjects/" + value.replace("/", "%2F"),
                                        allow_redirects=False)
        assert response.status in (200, 400, 404), (value, response.status)


async def test_a_subject_request_has_a_page_with_each_calls_outcome(api: Api) -> None:
    await api.uploaded(wav_tone(0.1), call_id="q1", customer_id="C-9",
                       started_at="2026-11-23T23:30:00Z")
    await api.uploaded(wav_tone(0.1, frequency=500), call_id="q2", customer_id="C-9",
                       started_at="2026-11-20T08:00:00Z",
                       purposes=["training", "accounting_record"])
    _, done = await api.call("POST", "/v1/subjects/C-9/erasure",
                             {"reason": "asked", "request_reference": "DSR-9"})
    request_id = done["subject_request"]["id"]
    await signed_in(api, "cora", ["compliance"])

    status, listing = await page(api, "/compliance")
    assert status == 200 and f'href="/subject-requests/{request_id}"' in listing
    assert "Partially completed" in listing
    status, html = await page(api, f"/subject-requests/{request_id}",
                              cookies={"rs_tz": "Europe/Helsinki"})
    assert status == 200
    assert "DSR-9" in html and "Partially completed" in html
    # The calls by their date in the reader's zone, each with what became of it.
    assert "2026-11-24 01:30" in html and "2026-11-20 10:00" in html
    assert "erased" in html and "the law requires keeping it" in html
    assert "Signed deletion receipt" in html
    status, _ = await page(api, "/subject-requests/dsr_nosuch")
    assert status == 404
    response = await api.client.post("/v1/subjects/C-9/export",
                                     json={"request_reference": "DSR-10"},
                                     headers=api.auth("compliance"))
    assert response.status == 200
    zipped = await response.read()
    listed = await api.call("GET", "/v1/subject-requests?customer_id=C-9", role="compliance")
    access = next(r for r in listed[1]["items"] if r["type"] == "access")
    status, html = await page(api, f"/subject-requests/{access['id']}")
    assert status == 200 and hashlib.sha256(zipped).hexdigest() in html


async def test_a_recording_says_when_it_goes_or_what_keeps_it_past_its_date(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), call_id="ret-1", purposes=["training"])
    await signed_in(api, "cora", ["compliance"])
    _, html = await page(api, f"/recordings/{rec['id']}")
    days = (datetime.fromisoformat(rec["purge_at"].replace("Z", "+00:00")) - api.clock()).days
    assert f"Purged in {days} days (" in html
    status, _ = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "LIT-77", "reason": "suit", "recording_ids": [rec["id"]]})
    assert status == 201
    api.clock.advance(days=days + 2)
    await signed_in(api, "cora-later", ["compliance"])  # sessions end; days have passed
    _, html = await page(api, f"/recordings/{rec['id']}")
    assert "Overdue since" in html and "under a legal hold (LIT-77)" in html


async def test_compliance_sees_what_the_next_purge_takes_and_each_run_after(
        api: Api) -> None:
    going = await api.uploaded(wav_tone(0.1), call_id="due-1", purposes=["training"],
                               started_at="2026-11-24T08:00:00Z")
    held = await api.uploaded(wav_tone(0.1, frequency=500), call_id="due-2",
                              purposes=["training"], started_at="2026-11-24T08:30:00Z")
    status, _ = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "LIT-5", "reason": "suit", "recording_ids": [held["id"]]})
    assert status == 201
    api.clock.advance(days=200)  # training (6 months) has ended for both
    await signed_in(api, "cora", ["compliance"])

    status, html = await page(api, "/compliance")
    assert status == 200
    assert "2 recordings are due now" in html
    assert "purges it" in html and "keeps it</strong>: under legal hold: LIT-5" in html
    assert "data-confirm=" in html  # a real run asks first
    # The preview changed nothing and recorded no run.
    _, runs = await api.call("GET", "/v1/purge-runs")
    assert runs["items"] == []

    status, run = await api.call("POST", "/v1/purge-runs", {})
    assert status == 201
    status, html = await page(api, f"/purge-runs/{run['run_id']}")
    assert status == 200
    assert "Signed deletion receipt" in html and "2026-11-24 08:00" in html
    assert "under a legal hold: LIT-5" in html
    status, one = await api.call("GET", f"/v1/purge-runs/{run['run_id']}")
    assert status == 200 and one["purged"] == [going["id"]]
    status, _ = await api.call("GET", "/v1/purge-runs/run_nosuch")
    assert status == 404
    _, html = await page(api, "/compliance")
    assert "1 recording is due now" in html


async def test_an_auditor_reads_the_log_newest_first_by_call_and_takes_it_away_as_csv(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), call_id="call-77")
    await api.audio(rec["id"], "training", "supervisor")
    formula = await create_token(api.services.database, "=HYPERLINK(1)", ["supervisor"],
                                 api.clock())
    seen = await api.client.get(f"/v1/recordings/{rec['id']}",
                                headers={"Authorization": f"Bearer {formula}"})
    assert seen.status == 200
    await signed_in(api, "aino", ["auditor"])

    _, html = await page(api, "/audit", cookies={"rs_tz": "Europe/Helsinki"})
    seqs = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    assert re.search(r"<td>2026-11-24 11:15:\d\d</td>", html)  # to the second, in the zone
    _, html = await page(api, "/audit", params={"order": "oldest"})
    seqs = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert seqs == sorted(seqs)

    _, html = await page(api, "/audit", params={"call_id": "call-77", "action": "stream"})
    assert html.count("<tr><td>") == 1 and rec["id"] in html
    _, html = await page(api, "/audit", params={"call_id": "no-such-call"})
    assert "No recording has the call id no-such-call" in html and "No entries match" in html

    response = await api.client.get("/audit.csv", params={"call_id": "call-77"})
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0][:5] == ["seq", "at", "actor", "roles", "action"]
    assert {r[4] for r in rows[1:]} == {"upload", "stream", "view_metadata"}
    assert all(r[5] == rec["id"] for r in rows[1:])
    exports = await api.audit(action="audit_export")
    assert [e["detail"]["filter"] for e in exports] == [{"call_id": "call-77"}]
    # A name a spreadsheet would run as a formula is kept as text.
    response = await api.client.get("/audit.csv", params={"actor": "=HYPERLINK(1)"})
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert [r[2] for r in rows[1:]] == ["'=HYPERLINK(1)"]


async def test_a_supervisor_pages_sorted_results_both_ways_and_finds_ids_in_any_case(
        api: Api) -> None:
    ids = []
    for i in range(30):
        rec = await api.uploaded(wav_tone(0.1 + i / 100, frequency=200 + i),
                                 call_id=f"CALL-{i:02d}", agent_id="A-12" if i % 2 else "A-1",
                                 started_at=f"2026-11-{1 + i % 28:02d}T{8 + i // 28:02d}:00:00Z")
        ids.append(rec["id"])
    await signed_in(api, "sanna", ["supervisor"])
    _, html = await page(api, "/recordings", params={"agent_id": "a-1"})
    assert "1\u201325 of 30, newest call first" in html and "Previous page" not in html
    nxt = re.search(r'href="([^"]+)" rel="next"', html)
    assert nxt is not None
    _, second = await page(api, nxt.group(1).replace("&amp;", "&"))
    assert "26\u201330 of 30" in second and "Next page" not in second
    prev = re.search(r'href="([^"]+)" rel="prev"', second)
    assert prev is not None
    _, back = await page(api, prev.group(1).replace("&amp;", "&"))
    assert "1\u201325 of 30" in back
    assert re.findall(r"<tr>\s*<td><a href=\"/recordings/(rec_[\w-]+)\"", back) == \
        re.findall(r"<tr>\s*<td><a href=\"/recordings/(rec_[\w-]+)\"", html)
    # Longest first; the case and the rest of an id do not matter.
    _, longest = await page(api, "/recordings", params={"agent_id": "a-12",
                                                        "sort": "-duration"})
    assert "1\u201315 of 15, longest first" in longest
    assert re.findall(r"<tr>\s*<td><a href=\"/recordings/(rec_[\w-]+)\"", longest) == \
        [ids[i] for i in range(29, 0, -2)]
    # The search is remembered for this sign-in: the plain page brings it back.
    response = await api.client.get("/recordings", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/recordings?agent_id=a-12&sort=-duration"
    # Phone numbers are compliance's to search: the field is not there for a supervisor.
    assert 'name="phone_number"' not in html
    status, html = await page(api, "/recordings", params={"agent_id": "a", "min_minutes": "x"})
    assert status == 400 and "Shortest must be a number of minutes." in html
    # Signed in anew, the last person's search is not brought back.
    await signed_in(api, "maija", ["compliance"])
    response = await api.client.get("/recordings", allow_redirects=False)
    assert response.status == 200
    _, html = await page(api, "/recordings", params={"call_id": "call-0"})
    assert "1\u201310 of 10" in html and 'name="phone_number"' in html


async def test_every_console_page_refuses_every_role_it_does_not_name(api: Api) -> None:
    everyone = ("ingest", "supervisor", "compliance", "auditor", "agent")
    refused = []
    for role in everyone:
        api.client.session.cookie_jar.clear()
        await signed_in(api, f"only-{role}", [role], "A-7" if role == "agent" else None)
        for path, _, roles, _ in PAGES:
            if not roles or role in roles:
                continue
            status, _ = await page(api, re.sub(r"{\w+}", "x", path))
            refused.append((role, path, status))
    assert refused and all(status == 403 for _, _, status in refused), refused


async def test_an_auditor_sees_who_heard_a_call_and_which_parts(api: Api) -> None:
    rec = await api.uploaded(wav_tone(10), call_id="call-heard")
    size = rec["size_bytes"]
    await api.audio(rec["id"], "training", "supervisor", headers={"Range": f"bytes=0-{size // 2}"})
    await signed_in(api, "aino", ["auditor"])
    status, html = await page(api, f"/recordings/{rec['id']}/listenings")
    assert status == 200
    row = re.search(r"<tr><td><a [^>]*>supervisor</a></td><td>training</td>.*?</tr>", html, re.S)
    assert row is not None
    assert "0:05 of 0:10" in row.group(0) and "0:00\u20130:05" in row.group(0)
    _, audit = await page(api, "/audit", params={"recording_id": rec["id"]})
    assert f'href="/recordings/{rec["id"]}/listenings"' in audit


async def test_every_page_title_is_plain_words(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.2), call_id="title-1", agent_id="A-1")
    await signed_in(api, "maija", ["compliance", "auditor"])
    for path in ("/recordings?agent_id=a", f"/recordings/{rec['id']}", "/compliance",
                 "/audit", f"/recordings/{rec['id']}/listenings"):
        _, html = await page(api, path)
        title = re.search(r"<title>(.*?)</title>", html, re.S)
        assert title is not None and "<" not in title.group(1), (path, title)


async def test_an_agent_answers_an_evaluation_and_plays_shared_clips_in_the_console(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(3), call_id="c-agent", agent_id="A-7",
                             purposes=["quality_review", "training"])
    _, scored = await api.call("POST", f"/v1/recordings/{rec['id']}/evaluations", {
        "form": "standard", "answers": {"greeting": True, "identity": True, "need": 4,
                                        "resolution": 4, "courtesy": 4,
                                        "disclosures": True}}, role="supervisor")
    _, made = await api.call("POST", "/v1/collections", {"name": "Openings"},
                             role="supervisor")
    await api.call("POST", f"/v1/collections/{made['id']}/clips", {
        "recording_id": rec["id"], "start_seconds": 0, "end_seconds": 1, "note": "hello"},
        role="supervisor")
    await api.call("PUT", f"/v1/collections/{made['id']}/shares/A-7", role="supervisor")
    await signed_in(api, "aada", ["agent"], "A-7")
    status, _ = await page(api, "/")
    assert status == 303
    _, mine = await page(api, "/my-evaluations")
    assert f'href="/evaluations/{scored["id"]}"' in mine and ">open<" in mine
    _, one = await page(api, f"/evaluations/{scored['id']}")
    assert 'value="dispute"' in one and 'value="acknowledge"' in one
    assert f'href="/recordings/{rec["id"]}"' not in one  # the call's page is not theirs
    _, library = await page(api, f"/collections/{made['id']}")
    assert f'src="/v1/collections/{made["id"]}/clips/' in library
    assert "Share with an agent" not in library
    status, _ = await page(api, f"/recordings/{rec['id']}")
    assert status == 403


async def test_a_supervisor_sees_coverage_per_day_and_the_calls_not_recorded(
        api: Api) -> None:
    from recordings_service import calls

    orphan = await api.uploaded(wav_tone(1), call_id="cov-orphan")
    await api.uploaded(wav_tone(1), call_id="cov-short")
    caller = await api.uploaded(wav_tone(30), call_id="cov-half", leg="caller")
    day = "2026-11-24"
    status, _ = await api.call("POST", "/v1/calls", [
        {"call_id": f"cov-{name}", "source": "pbx-1", "started_at": f"{day}T09:00:00Z",
         "answered_at": f"{day}T09:00:01Z", "ended_at": f"{day}T09:00:31Z"}
        for name in ("short", "missing", "half")], role="ingest")
    assert status == 200
    api.clock.advance(minutes=20)
    await calls.reconcile(api.services)
    await signed_in(api, "saara", ["supervisor"])
    status, html = await page(api, "/coverage")
    assert status == 200
    assert "pbx-1: calls per day by outcome" in html
    missing = re.search(r'id="missing-h".*?</section>', html, re.S)
    assert missing is not None and "cov-missing" in missing.group(0)
    partial = re.search(r'id="partial-h".*?</section>', html, re.S)
    assert partial is not None and "cov-half" in partial.group(0)
    assert f'href="/recordings/{caller["id"]}">caller</a>' in partial.group(0)
    unmatched = re.search(r'id="unmatched-h".*?</section>', html, re.S)
    assert unmatched is not None and f'href="/recordings/{orphan["id"]}"' in unmatched.group(0)
    status, _ = await page(api, "/coverage", params={"source": " "})
    assert status == 400


async def test_a_recording_page_names_the_other_legs_of_its_call(api: Api) -> None:
    caller = await api.uploaded(wav_tone(1), call_id="two-legs", leg="caller")
    callee = await api.uploaded(wav_tone(1, frequency=500), call_id="two-legs", leg="callee")
    await signed_in(api, "saara", ["supervisor"])
    status, html = await page(api, f"/recordings/{caller['id']}")
    assert status == 200
    legs = re.search(r"<dt>Legs of the call</dt><dd>(.*?)</dd>", html)
    assert legs is not None
    assert legs.group(1) == (f'<a href="/recordings/{callee["id"]}">callee</a>, '
                             "caller (this one)")
