"""Metadata and search: role-checked, audited with the filter used, keyset-paginated."""

from __future__ import annotations

import asyncio
from typing import Any

from recordings_service import jobs
from recordings_service.app import create_app
from recordings_service.config import Config
from storage import recording_search
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock


async def test_metadata_is_audited_and_role_checked(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), customer_id="c-1")
    ok = await api.client.get(f"/v1/recordings/{rec['id']}", headers=api.auth("supervisor"))
    seen = await ok.json()
    # The same recording, with the call's legs (this one alone); only what the caller may
    # hear it for differs (see below).
    assert seen.pop("legs") == [{"id": rec["id"], "leg": "mixed"}]
    assert ok.status == 200 and seen | {"allowed_purposes": []} == rec
    assert seen["allowed_purposes"] == ["training"]
    for role in ("ingest", "auditor"):
        denied = await api.client.get(f"/v1/recordings/{rec['id']}", headers=api.auth(role))
        assert denied.status == 403
    missing = await api.client.get("/v1/recordings/rec_none", headers=api.auth("compliance"))
    assert missing.status == 404 and (await missing.json())["reason"] == "not_found"
    entries = await api.audit(action="view_metadata")
    assert [(e["actor"], e["outcome"]) for e in entries] == [
        ("supervisor", "allowed"), ("ingest", "denied"), ("auditor", "denied"),
        ("compliance", "denied")]
    assert entries[-1]["reason"] == "not_found"


async def _search(api: Api, **params: str) -> dict[str, Any]:
    response = await api.client.get("/v1/recordings", params=params,
                                    headers=api.auth("compliance"))
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_search_filters_and_audits_the_filter(api: Api) -> None:
    for i, (customer, agent, day) in enumerate([("c-1", "a-1", 20), ("c-1", "a-2", 21),
                                                ("c-2", "a-1", 22)]):
        await api.uploaded(wav_tone(0.1, frequency=300 + i), call_id=f"call-{i}",
                           customer_id=customer, agent_id=agent,
                           started_at=f"2026-11-{day}T10:00:00Z")
    assert {r["call_id"] for r in (await _search(api, customer_id="c-1"))["items"]} == \
        {"call-0", "call-1"}
    assert [r["call_id"] for r in (await _search(api, agent_id="a-1", customer_id="c-2")
                                   )["items"]] == ["call-2"]
    ranged = await _search(api, started_after="2026-11-21T00:00:00Z",
                           started_before="2026-11-22T00:00:00Z")
    assert [r["call_id"] for r in ranged["items"]] == ["call-1"]
    assert (await _search(api, call_id="call-0"))["items"][0]["customer_id"] == "c-1"
    assert (await _search(api, state="purged"))["items"] == []
    audited = await api.audit(action="search")
    assert audited[0]["detail"] == {"filter": {"customer_id": "c-1"}, "sort": "-started_at",
                                    "count": 2}
    bad = await api.client.get("/v1/recordings", params={"started_after": "soon"},
                               headers=api.auth("compliance"))
    assert bad.status == 400 and (await bad.json())["reason"] == "invalid_query"
    limit = await api.client.get("/v1/recordings", params={"limit": "501"},
                                 headers=api.auth("compliance"))
    assert limit.status == 400


async def _ids(api: Api, role: str = "compliance", **params: str) -> list[str]:
    response = await api.client.get("/v1/recordings", params=params, headers=api.auth(role))
    assert response.status == 200, await response.text()
    return [r["call_id"] for r in (await response.json())["items"]]


async def test_ids_match_by_prefix_in_any_case_and_more_filters_narrow(api: Api) -> None:
    calls = [("k-1", "A-1", "C-1003", "inbound", 1.0, "Billing"),
             ("k-2", "A-12", "c-1004", "outbound", 3.0, "billing-vip"),
             ("k-3", "a-100", "C-2000", "inbound", 2.0, "sales"),
             ("K-4", "B-1", "C-1003", "outbound", 0.5, "sales")]
    for i, (call, agent, customer, direction, seconds, queue) in enumerate(calls):
        await api.uploaded(wav_tone(seconds, frequency=300 + i), call_id=call, agent_id=agent,
                           customer_id=customer, direction=direction, queue=queue,
                           phone_number=f"+35840123456{i}",
                           purposes=["training"] if i % 2 else ["legal_protection"],
                           started_at=f"2026-11-2{i}T10:00:00Z")
    # Exact, as it always was, unless asked for a prefix match.
    assert await _ids(api, agent_id="a-1") == []
    assert await _ids(api, agent_id="a-1", match="prefix") == ["k-3", "k-2", "k-1"]
    assert await _ids(api, agent_id="A-12", match="prefix") == ["k-2"]
    assert await _ids(api, customer_id="c-100", match="prefix") == ["K-4", "k-2", "k-1"]
    assert await _ids(api, call_id="k", match="prefix", agent_id="A") == ["k-3", "k-2", "k-1"]
    assert await _ids(api, queue="BILL", match="prefix") == ["k-2", "k-1"]
    assert await _ids(api, agent_id="zz", match="prefix") == []
    assert await _ids(api, direction="outbound") == ["K-4", "k-2"]
    assert await _ids(api, min_duration="1", max_duration="2.5") == ["k-3", "k-1"]
    assert await _ids(api, purpose="training") == ["K-4", "k-2"]
    assert await _ids(api, phone_number="+358401234562") == ["k-3"]
    for bad in ({"direction": "sideways"}, {"min_duration": "-1"}, {"max_duration": "1e9"},
                {"purpose": "gossip"}, {"match": "fuzzy"}, {"sort": "queue"}):
        response = await api.client.get("/v1/recordings", params=bad,
                                        headers=api.auth("compliance"))
        assert (response.status, (await response.json())["reason"]) == (400, "invalid_query")
    # Phone numbers are searched by compliance only.
    refused = await api.client.get("/v1/recordings", params={"phone_number": "+35840"},
                                   headers=api.auth("supervisor"))
    assert (refused.status, (await refused.json())["reason"]) == (403, "phone_search_forbidden")


async def test_a_prefix_that_stands_for_too_many_ids_asks_for_more(api: Api) -> None:
    for i in range(recording_search.MATCHED_IDS + 1):
        await api.uploaded(wav_tone(0.1, frequency=200 + i), call_id=f"m-{i}",
                           agent_id=f"A-{i:02d}")
    response = await api.client.get("/v1/recordings", params={"agent_id": "a-",
                                                              "match": "prefix"},
                                    headers=api.auth("supervisor"))
    assert (response.status, (await response.json())["reason"]) == (400, "too_many_matches")
    assert len(await _ids(api, "supervisor", agent_id="a-1", match="prefix")) == 10


async def test_sorts_page_forward_and_back_from_any_page(api: Api) -> None:
    seconds = [0.4, 0.1, 0.3, 0.5, 0.2, 0.6, 0.35]
    for i, s in enumerate(seconds):
        # Four of them on one agent, two agents: each its own index, one page.
        await api.uploaded(wav_tone(s, frequency=200 + i), call_id=f"s-{i}",
                           agent_id="A-1" if i % 2 else "A-2",
                           started_at=f"2026-11-2{i}T10:00:00Z")
    by_time = [f"s-{i}" for i in range(7)]
    by_length = [f"s-{i}" for i in sorted(range(7), key=lambda i: seconds[i])]
    by_agent = [f"s-{i}" for i in (1, 3, 5, 0, 2, 4, 6)]  # A-1's calls, then A-2's
    for sort, expected, agent in (("-started_at", by_time[::-1], None),
                                  ("started_at", by_time, None),
                                  ("duration", by_length, None),
                                  ("-duration", by_length[::-1], None),
                                  ("-duration", by_length[::-1], "a-"),
                                  ("agent", by_agent, None), ("-agent", by_agent[::-1], None),
                                  ("agent", by_agent, "a-")):
        params = {"sort": sort, "limit": "3"} | (
            {"agent_id": agent, "match": "prefix"} if agent else {})
        pages, cursor, prev = [], None, None
        while True:
            response = await api.client.get(
                "/v1/recordings", params=params | ({"cursor": cursor} if cursor else {}),
                headers=api.auth("supervisor"))
            assert response.status == 200, await response.text()
            body = await response.json()
            pages.append([r["call_id"] for r in body["items"]])
            assert (body["prev_cursor"] is None) == (cursor is None)
            cursor, prev = body["next_cursor"], body["prev_cursor"]
            if cursor is None:
                break
        assert [c for p in pages for c in p] == expected, sort
        # Back from the last page: the pages before it, the same as on the way there.
        back = await api.client.get("/v1/recordings", params=params | {"cursor": prev},
                                    headers=api.auth("supervisor"))
        body = await back.json()
        assert [r["call_id"] for r in body["items"]] == pages[-2]
        assert body["next_cursor"] is not None and body["prev_cursor"] is not None
    # A cursor is for the sort it was made for.
    first = await api.client.get("/v1/recordings", params={"sort": "duration", "limit": "1"},
                                 headers=api.auth("supervisor"))
    cursor = (await first.json())["next_cursor"]
    other = await api.client.get("/v1/recordings", params={"cursor": cursor},
                                 headers=api.auth("supervisor"))
    assert (other.status, (await other.json())["reason"]) == (400, "invalid_cursor")


async def test_pagination_is_newest_call_first_and_stable_under_inserts(api: Api) -> None:
    # Uploaded out of call order, as a spool that waited for the service sends them.
    for i in (2, 0, 4, 1, 3):
        await api.uploaded(wav_tone(0.1, frequency=200 + i), call_id=f"p-{i}",
                           started_at=f"2026-11-24T09:0{i}:00Z")
        api.clock.advance(seconds=1)
    first = await _search(api, limit="2")
    assert [r["call_id"] for r in first["items"]] == ["p-4", "p-3"]
    # Arriving meanwhile: a newer call (before the cursor: the next search shows it
    # first) and an older one (after it: this walk reaches it at its place).
    await api.uploaded(wav_tone(0.1, frequency=999), call_id="p-new",
                       started_at="2026-11-24T10:00:00Z")
    await api.uploaded(wav_tone(0.1, frequency=998), call_id="p-late",
                       started_at="2026-11-24T08:00:00Z")
    seen = [r["call_id"] for r in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await _search(api, limit="2", cursor=cursor)
        seen += [r["call_id"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["p-4", "p-3", "p-2", "p-1", "p-0", "p-late"]
    again = await _search(api, limit="1")
    assert [r["call_id"] for r in again["items"]] == ["p-new"]
    bad = await api.client.get("/v1/recordings", params={"cursor": "%%%"},
                               headers=api.auth("compliance"))
    assert bad.status == 400 and (await bad.json())["reason"] == "invalid_cursor"


async def test_concurrent_accesses_keep_the_chain_gapless(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.2))
    await asyncio.gather(*(api.audio(rec["id"], purpose, "supervisor")
                           for purpose in ["training", "security"] * 20))
    entries = await api.audit(action="stream")
    assert len(entries) == 40
    report = await jobs.verify_audit(api.services)
    assert report.ok and report.first_bad_seq is None


async def test_serve_schedules_its_jobs(aiohttp_client: Any, config: Config,
                                        clock: FrozenClock) -> None:
    client = await aiohttp_client(create_app(config.with_overrides(scheduler_enabled=True),
                                             clock))
    scheduler = client.server.app[jobs.SCHEDULER_KEY]
    assert {job.id for job in scheduler.get_jobs()} == {
        "checkpoint", "checkpoint_when_due", "rewrap", "purge", "orphan_sweep", "session_sweep",
        "audit_archive", "reconcile"}
    assert scheduler.running


async def test_the_recording_says_what_the_caller_may_hear_it_for_now(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.3), purposes=["training", "legal_protection"])
    assert rec["allowed_purposes"] == []  # the uploader hears nothing
    as_supervisor = await (await api.client.get(f"/v1/recordings/{rec['id']}",
                                                headers=api.auth("supervisor"))).json()
    as_compliance = await (await api.client.get(f"/v1/recordings/{rec['id']}",
                                                headers=api.auth("compliance"))).json()
    assert as_supervisor["allowed_purposes"] == ["training"]
    assert as_compliance["allowed_purposes"] == ["legal_protection"]
    # It is exactly what the audio endpoint allows, and it follows restriction.
    for purpose in ("training", "legal_protection"):
        response = await api.audio(rec["id"], purpose, "supervisor")
        assert (response.status == 200) == (purpose in as_supervisor["allowed_purposes"])
    status, restricted = await api.call("PUT", f"/v1/recordings/{rec['id']}/restriction",
                                        {"reason": "dispute"})
    assert status == 200 and restricted["allowed_purposes"] == ["legal_protection"]
    listed = await (await api.client.get("/v1/recordings", headers=api.auth("supervisor"),
                                         params={"call_id": rec["call_id"]})).json()
    assert listed["items"][0]["allowed_purposes"] == []
