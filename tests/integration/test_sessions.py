"""People sign in with a local account: a server-side session behind an HttpOnly,
SameSite=Strict cookie, with CSRF protection, expiry, sign-out, and brute-force limits that
never reveal whether an account exists. Every step is audited."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from recordings_service import people
from tests.audio import wav_tone
from tests.conftest import Api

PASSWORD = "plum-orchard-vinegar-42"


@pytest.fixture
async def person(api: Api) -> str:
    await people.create_user(api.services.database, "maija", ["supervisor", "compliance"],
                             PASSWORD, api.clock())
    return "maija"


async def sign_in(api: Api, name: str, password: str) -> Any:
    return await api.client.post("/v1/session", json={"name": name, "password": password})


def same_origin(api: Api, csrf: str | None) -> dict[str, str]:
    headers = {"Origin": f"http://{api.client.host}:{api.client.port}"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


async def test_sign_in_sets_a_strict_cookie_and_the_person_acts_with_their_roles(
        api: Api, person: str) -> None:
    response = await sign_in(api, person, PASSWORD)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["name"] == "maija" and body["roles"] == ["compliance", "supervisor"]
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS it is set
    # The cookie (kept by the client) now opens what the roles allow, with the same rules.
    rec = await api.uploaded(wav_tone(0.3))
    audio = await api.client.get(f"/v1/recordings/{rec['id']}/audio",
                                 headers={"Access-Purpose": "training"})
    assert audio.status == 200
    me = await (await api.client.get("/v1/session")).json()
    assert me["name"] == "maija" and me["csrf_token"] == body["csrf_token"]
    # The access is audited under the person's name.
    entry = (await api.audit(recording_id=rec["id"], action="stream"))[-1]
    assert entry["actor"] == "maija"
    assert [e["outcome"] for e in await api.audit(action="sign_in")] == ["allowed"]


async def test_changes_by_cookie_need_the_csrf_token_and_the_same_origin(
        api: Api, person: str) -> None:
    csrf = (await (await sign_in(api, person, PASSWORD)).json())["csrf_token"]
    rec = await api.uploaded(wav_tone(0.3))
    path = f"/v1/recordings/{rec['id']}/restriction"
    here = f"{api.client.host}:{api.client.port}"
    for headers in ({}, same_origin(api, None), same_origin(api, "wrong"),
                    {"Origin": "https://evil.example", "X-CSRF-Token": csrf},
                    # Same host and port, another scheme: another origin.
                    {"Origin": f"https://{here}", "X-CSRF-Token": csrf},
                    same_origin(api, csrf) | {"Sec-Fetch-Site": "cross-site"}):
        refused = await api.client.put(path, json={"reason": "dispute"}, headers=headers)
        assert refused.status == 403
        assert (await refused.json())["reason"] == "csrf"
    allowed = await api.client.put(path, json={"reason": "dispute"},
                                   headers=same_origin(api, csrf))
    assert allowed.status == 200, await allowed.text()
    # Behind a TLS-terminating proxy the browser's origin is https.
    behind_tls = await api.client.delete(path, json={"reason": "settled"}, headers={
        "Origin": f"https://{here}", "X-CSRF-Token": csrf, "X-Forwarded-Proto": "https"})
    assert behind_tls.status == 200, await behind_tls.text()


async def test_sign_out_ends_the_session_everywhere(api: Api, person: str) -> None:
    first = await sign_in(api, person, PASSWORD)
    value = first.cookies["rs_session"].value
    csrf = (await first.json())["csrf_token"]
    out = await api.client.delete("/v1/session", headers=same_origin(api, csrf))
    assert out.status == 204
    # Even a copy of the cookie no longer works.
    again = await api.client.get("/v1/session", cookies={"rs_session": value})
    assert again.status == 401
    assert [e["action"] for e in await api.audit(actor="maija")][-1] == "sign_out"


async def test_sessions_end_when_idle_and_after_their_lifetime(api: Api, person: str) -> None:
    await sign_in(api, person, PASSWORD)
    api.clock.advance(minutes=29)
    assert (await api.client.get("/v1/session")).status == 200  # keeps it alive
    api.clock.advance(minutes=29)
    assert (await api.client.get("/v1/session")).status == 200
    api.clock.advance(minutes=31)
    assert (await api.client.get("/v1/session")).status == 401  # idle too long
    await sign_in(api, person, PASSWORD)
    for _ in range(12 * 4):
        api.clock.advance(minutes=15)
        if (await api.client.get("/v1/session")).status != 200:
            break
    assert (await api.client.get("/v1/session")).status == 401  # 12 hours at most


async def test_a_new_session_each_time_and_a_planted_cookie_is_useless(
        api: Api, person: str) -> None:
    api.client.session.cookie_jar.update_cookies({"rs_session": "planted-by-an-attacker"})
    assert (await api.client.get("/v1/session")).status == 401
    one = (await sign_in(api, person, PASSWORD)).cookies["rs_session"].value
    two = (await sign_in(api, person, PASSWORD)).cookies["rs_session"].value
    assert one != two and "planted-by-an-attacker" not in (one, two)


async def test_wrong_and_unknown_accounts_get_the_same_answer_and_are_audited(
        api: Api, person: str) -> None:
    wrong = await sign_in(api, person, "not-the-password-at-all")
    unknown = await sign_in(api, "nobody", "not-the-password-at-all")
    answers = [(r.status, (await r.json())["reason"], (await r.json())["detail"])
               for r in (wrong, unknown)]
    assert answers[0] == answers[1] == (401, "invalid_credentials",
                                        "the name or the password is wrong")
    denied = await api.audit(action="sign_in", outcome="denied")
    assert [e["detail"]["account"] for e in denied] == ["maija", None]
    assert "not-the-password-at-all" not in str(denied)


async def test_a_pair_that_keeps_failing_waits_twice_as_long_each_time(
        api: Api, person: str) -> None:
    for _ in range(3):
        assert (await sign_in(api, person, "guess-guess-guess")).status == 401
    for wait in (1, 2):
        locked = await sign_in(api, person, PASSWORD)  # even the right password, for now
        assert locked.status == 429
        assert (await locked.json())["reason"] == "too_many_attempts"
        assert int(locked.headers["Retry-After"]) == wait
        api.clock.advance(seconds=wait)
        assert (await sign_in(api, person, "guess-guess-guess")).status == 401
    # Five failures: the account is past its limit, and this address has failed on it, so
    # it is not heard again until the window ends (another address still is).
    locked = await sign_in(api, person, PASSWORD)
    assert locked.status == 429
    assert 4 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert await api.audit(action="sign_in_lockout")
    api.clock.advance(seconds=int(locked.headers["Retry-After"]))
    assert (await sign_in(api, person, PASSWORD)).status == 200


async def test_an_unknown_name_is_limited_like_a_real_one(api: Api) -> None:
    for _ in range(3):
        assert (await sign_in(api, "ghost", "guess-guess-guess")).status == 401
    assert (await sign_in(api, "ghost", "guess-guess-guess")).status == 429


def behind_proxy(api: Api, client: str) -> dict[str, str]:
    """As a request through the reverse proxy at 127.0.0.1 from ``client`` arrives."""
    return {"X-Forwarded-For": f"{client}, 127.0.0.1"}


async def sign_in_from(api: Api, name: str, password: str, client: str) -> int:
    response = await api.client.post("/v1/session", json={"name": name, "password": password},
                                      headers=behind_proxy(api, client))
    return response.status


@pytest.fixture
def proxied(api: Api) -> Api:
    api.services.config = api.services.config.with_overrides(
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    return api


async def test_an_attacker_at_full_speed_gets_nowhere_while_the_owner_signs_in(
        proxied: Api, person: str) -> None:
    api, heard, tries = proxied, 0, 0
    # Ten simulated minutes of guessing, 20 guesses a second, all from one address.
    for second in range(600):
        for _ in range(20 if second % 60 == 0 else 1):
            status = await sign_in_from(api, person, f"guess-{tries}-xx", "203.0.113.9")
            tries += 1
            heard += status == 401
            assert status in (401, 429)
        if second % 120 == 0:
            # The owner, from the office next door, behind the same proxy.
            assert await sign_in_from(api, person, PASSWORD, "198.51.100.7") == 200
        api.clock.advance(seconds=1)
    # 3 free tries, then each wait doubles: about log2 of the time spent, not the tries.
    assert heard <= 3 + 10 + 1, (heard, tries)
    assert tries > 700
    # The address the audit log names is the client's, not the proxy's.
    denied = await api.audit(action="sign_in", outcome="denied")
    assert {e["client_ip"] for e in denied} == {"203.0.113.9"}


async def test_behind_one_shared_address_the_owner_is_not_locked_out_by_another_account(
        api: Api, person: str) -> None:
    # No trusted proxy: everyone behind the office NAT is one address. An attacker there
    # tries 40 accounts, past the address's limit of 20.
    for n in range(40):
        assert (await sign_in(api, f"victim-{n}", "guess-guess-guess")).status == 401
    for _ in range(3):
        await sign_in(api, "victim-0", "guess-guess-guess")
    assert (await sign_in(api, "victim-0", "guess-guess-guess")).status == 429
    # The owner, at the same address, on their own account: heard at once.
    assert (await sign_in(api, person, PASSWORD)).status == 200


async def test_the_owner_at_the_attackers_own_address_waits_a_bounded_time(
        api: Api, person: str) -> None:
    for _ in range(12):
        await sign_in(api, person, "guess-guess-guess")
        api.clock.advance(seconds=300)
    response = await sign_in(api, person, PASSWORD)
    if response.status == 429:
        wait = int(response.headers["Retry-After"])
        assert wait <= 15 * 60  # never more than the failure window
        api.clock.advance(seconds=wait)
        response = await sign_in(api, person, PASSWORD)
    assert response.status == 200


async def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(
        api: Api, person: str) -> None:
    for n in range(3):
        assert await sign_in_from(api, person, "guess-guess-guess", f"192.0.2.{n}") == 401
    # Without [server] trusted_proxies, each "other" address was the peer itself.
    assert await sign_in_from(api, person, PASSWORD, "192.0.2.99") == 429
    denied = await api.audit(action="sign_in", outcome="denied")
    assert {e["client_ip"] for e in denied} == {"127.0.0.1"}


async def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions(
        api: Api, person: str) -> None:
    from storage import people_store

    await sign_in(api, person, PASSWORD)
    async with api.services.database.write() as conn:
        await people_store.disable_user(conn, person, api.clock())
    assert (await api.client.get("/v1/session")).status == 401
    refused = await sign_in(api, person, PASSWORD)
    assert refused.status == 401 and (await refused.json())["reason"] == "invalid_credentials"
    assert (await api.audit(action="sign_in", outcome="denied"))[-1]["reason"] == "disabled"


async def test_a_playback_link_made_in_a_session_plays(api: Api, person: str) -> None:
    csrf = (await (await sign_in(api, person, PASSWORD)).json())["csrf_token"]
    audio = wav_tone(0.4, frequency=700)
    rec = await api.uploaded(audio)
    made = await api.client.post(f"/v1/recordings/{rec['id']}/playback-links",
                                 json={"purpose": "training"}, headers=same_origin(api, csrf))
    assert made.status == 201, await made.text()
    url = (await made.json())["url"]
    api.client.session.cookie_jar.clear()
    assert await (await api.client.get(url)).read() == audio


@pytest.mark.parametrize("ending", ["password reset", "sign-out"])
async def test_a_playback_link_ends_with_the_session_it_was_made_in(
        api: Api, person: str, ending: str) -> None:
    csrf = (await (await sign_in(api, person, PASSWORD)).json())["csrf_token"]
    rec = await api.uploaded(wav_tone(0.4, frequency=710))
    made = await api.client.post(f"/v1/recordings/{rec['id']}/playback-links",
                                 json={"purpose": "training"}, headers=same_origin(api, csrf))
    url = (await made.json())["url"]
    if ending == "password reset":
        await people.reset_password(api.services.database, person, "a-new-orchard-pass-43")
    else:
        await api.client.delete("/v1/session", headers=same_origin(api, csrf))
    api.client.session.cookie_jar.clear()
    ended = await api.client.get(url)
    assert ended.status == 403 and (await ended.json())["reason"] == "link_revoked"


async def test_a_link_made_in_a_session_acts_as_the_person_not_a_token_of_that_name(
        api: Api, person: str) -> None:
    csrf = (await (await sign_in(api, person, PASSWORD)).json())["csrf_token"]
    audio = wav_tone(0.3, frequency=720)
    rec = await api.uploaded(audio)
    made = await api.client.post(f"/v1/recordings/{rec['id']}/playback-links",
                                 json={"purpose": "training"}, headers=same_origin(api, csrf))
    url = (await made.json())["url"]
    # A token under the person's name, as an older release let one be made: an auditor's,
    # which may hear nothing. The link still acts as the person who made it.
    from storage import catalog

    async with api.services.database.write() as conn:
        await catalog.create_token(conn, person, "0" * 64, ["auditor"], api.clock(), None)
    api.client.session.cookie_jar.clear()
    assert await (await api.client.get(url)).read() == audio


async def test_a_bearer_token_still_works_and_whoami_names_it(api: Api) -> None:
    me = await api.client.get("/v1/session", headers=api.auth("auditor"))
    assert (await me.json()) == {"name": "auditor", "roles": ["auditor"], "agent_id": None,
                                 "expires_at": None, "csrf_token": None}


async def test_sign_in_from_another_site_or_by_html_form_is_refused(api: Api,
                                                                  person: str) -> None:
    form = await api.client.post("/v1/session", data=f"name={person}&password={PASSWORD}",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415
    elsewhere = await api.client.post("/v1/session", json={"name": person, "password": PASSWORD},
                                      headers={"Origin": "https://evil.example"})
    assert elsewhere.status == 403 and (await elsewhere.json())["reason"] == "csrf"
    assert "rs_session" not in {c.key for c in api.client.session.cookie_jar}


async def test_concurrent_failures_are_all_counted(api: Api, person: str) -> None:
    # Ten wrong guesses at once (as a script would send them): none is a server error,
    # none is lost from the count.
    from storage import people_store

    answers = await asyncio.gather(*(sign_in(api, person, f"wrong-guess-{i}-xxxx")
                                     for i in range(10)))
    assert {r.status for r in answers} <= {401, 429}
    async with api.services.database.read() as conn:
        counted = await people_store.failures(conn, f"account:{person}")
    assert counted is not None
    assert counted.count == sum(r.status == 401 for r in answers) >= 5
    assert (await sign_in(api, person, PASSWORD)).status == 429


async def test_the_sweep_removes_only_what_can_no_longer_be_used(api: Api, person: str) -> None:
    from recordings_service import sessions
    from storage.schema import sessions as session_rows
    from storage.schema import sign_in_failures

    await sign_in(api, person, PASSWORD)  # a live session
    await sign_in(api, "ghost", "guess-guess-guess")  # a failure count
    assert await sessions.sweep(api.services) == 0  # everything still in use
    api.clock.advance(minutes=31)  # the session is idle past its limit, the window over
    assert await sessions.sweep(api.services) == 4  # session, pair, account, address counts
    async with api.services.database.read() as conn:
        for table in (session_rows, sign_in_failures):
            assert (await conn.execute(table.select())).first() is None
