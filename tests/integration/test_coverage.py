"""Call records and coverage through HTTP: every answered call a PBX reports is matched to
its recording once its grace has passed, and a call never recorded, or recorded short, is
counted, listed and measured; call records are personal data and go with retention and
with the subject."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recordings_service import calls
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.clock import system_clock
from recordings_service.config import load_config
from recordings_service.services import open_services
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import new_service, run_cli

# The fixture's clock: 2026-11-24 09:15 UTC. Calls of that morning.
DAY = "2026-11-24"


def call(call_id: str, start: str = "09:00:00", answered: str | None = "09:00:05",
         end: str = "09:00:15", **more: Any) -> dict[str, Any]:
    """A call record as a PBX sends it: answered after 5 s, 10 s talked, by default."""
    return {"call_id": call_id, "source": "pbx-1", "started_at": f"{DAY}T{start}Z",
            "answered_at": f"{DAY}T{answered}Z" if answered else None,
            "ended_at": f"{DAY}T{end}Z", "agent_id": "A-7", "queue": "billing", **more}


async def post(api: Api, body: Any) -> tuple[int, Any]:
    return await api.call("POST", "/v1/calls", body, role="ingest")


async def coverage(api: Api, **query: str) -> dict[str, Any]:
    response = await api.client.get("/v1/coverage", params={
        "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z", **query},
        headers=api.auth("supervisor"))
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def listed(api: Api, role: str = "compliance", **query: str) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/calls", params={
        "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z", **query},
        headers=api.auth(role))
    assert response.status == 200, await response.text()
    return (await response.json())["items"]  # type: ignore[no-any-return]


async def test_a_call_record_is_taken_once_per_source_and_call(api: Api) -> None:
    status, body = await post(api, call("c-1"))
    assert status == 200 and body["items"] == [
        {"source": "pbx-1", "call_id": "c-1", "outcome": "stored", "status": "pending"}]
    # The PBX re-sends what it is unsure was taken, with a new one and a changed one.
    status, body = await post(api, [call("c-1"), call("c-2", answered=None),
                                     call("c-1", source="pbx-2"),
                                     {**call("c-3"), "expect_recording": False}])
    assert status == 200
    assert [(i["call_id"], i["source"], i["outcome"], i["status"]) for i in body["items"]] == [
        ("c-1", "pbx-1", "unchanged", "pending"),
        ("c-2", "pbx-1", "stored", "not_expected"),  # never answered: nothing to record
        ("c-1", "pbx-2", "stored", "pending"),  # another PBX's call of that id
        ("c-3", "pbx-1", "stored", "not_expected")]  # the policy does not record it
    status, body = await post(api, call("c-1", agent_id="A-8"))
    assert body["items"][0]["outcome"] == "conflict"  # the first record stands
    found = await listed(api, call_id="c-1")
    assert sorted((c["source"], c["agent_id"]) for c in found) == [("pbx-1", "A-7"),
                                                                    ("pbx-2", "A-7")]
    # Audited as what the PBX sent, counting without naming anyone.
    entries = await api.audit(action="call_records")
    assert [(e["detail"]["received"], e["detail"]["stored"]) for e in entries] == [
        (1, 1), (4, 3), (1, 0)]
    assert "A-7" not in json.dumps(entries)


@pytest.mark.parametrize("bad, where", [
    ({**call("x"), "ended_at": f"{DAY}T08:00:00Z"}, "record 1"),
    ({**call("x"), "answered_at": f"{DAY}T10:00:00Z"}, "record 1"),
    ({**call("x"), "started_at": "yesterday"}, "record 1"),
    ({**call("x"), "colour": "blue"}, "record 1"),
    ({**call("x"), "call_id": ""}, "record 1"),
    ({**call("x"), "call_id": ".."}, "record 1"),
    ({**call("x"), "phone_number": "1" * 65}, "record 1"),
    ({**call("x"), "expect_recording": "yes"}, "record 1"),
    ({**call("x"), "direction": "sideways"}, "record 1"),
    ("c-x", "record 1"),
])
async def test_a_bad_record_refuses_the_whole_batch_naming_it(api: Api, bad: Any,
                                                               where: str) -> None:
    status, problem = await post(api, [call("good"), bad])
    assert (status, problem["reason"]) == (400, "invalid_call_record")
    assert problem["detail"].startswith(where)
    assert await listed(api) == []  # nothing half-taken


async def test_batches_are_bounded_and_shaped(api: Api) -> None:
    for body in ([], "c-1", 5, [call(f"c-{i}") for i in range(calls.MAX_BATCH + 1)]):
        status, problem = await post(api, body)
        assert (status, problem["reason"]) == (400, "invalid_call_record"), body
    status, body = await post(api, [call(f"c-{i}") for i in range(calls.MAX_BATCH)])
    assert status == 200 and len(body["items"]) == calls.MAX_BATCH
    for role in ("supervisor", "compliance", "auditor", "agent"):
        status, _ = await api.call("POST", "/v1/calls", call("c-y"), role=role)
        assert status == 403, role


async def test_reconciliation_finds_recorded_short_missing_and_unmatched_calls(
        api: Api) -> None:
    await api.uploaded(wav_tone(10), call_id="c-full", started_at=f"{DAY}T09:00:00Z")
    await api.uploaded(wav_tone(3), call_id="c-cut", started_at=f"{DAY}T09:01:00Z")
    await api.uploaded(wav_tone(2), call_id="c-orphan", started_at=f"{DAY}T09:02:00Z")
    status, _ = await post(api, [
        call("c-full"), call("c-cut", start="09:01:00", answered="09:01:00", end="09:01:10"),
        call("c-none", start="09:03:00", answered="09:03:01", end="09:03:11"),
        call("c-unanswered", answered=None), {**call("c-private"), "expect_recording": False}])
    assert status == 200

    # Within the grace (15 min past each call's end) nothing is decided: a spool that
    # waited for the service may still deliver.
    assert await calls.reconcile(api.services) == {
        "recorded": 0, "missing": 0, "short": 0, "partial": 0}
    before = await coverage(api)
    assert before["counts"]["pending"] == 3 and before["counts"]["unmatched"] == 0

    api.clock.advance(minutes=16)
    assert await calls.reconcile(api.services) == {
        "recorded": 1, "missing": 1, "short": 1, "partial": 0}
    report = await coverage(api)
    assert report["counts"] == {"pending": 0, "recorded": 1, "missing": 1, "short": 1,
                                "partial": 0, "not_expected": 2, "unmatched": 1}
    assert report["ratio"] == pytest.approx(1 / 3, abs=1e-4)
    assert [(d["date"], d["source"]) for d in report["days"]] == [(DAY, None), (DAY, "pbx-1")]
    missing = await listed(api, status="missing")
    assert [c["call_id"] for c in missing] == ["c-none"] and missing[0]["recordings"] == []
    short = await listed(api, status="short")
    assert short[0]["recorded_seconds"] == pytest.approx(3, abs=0.01)
    assert short[0]["recordings"] != []
    orphans = await listed(api, status="unmatched")
    assert [c["call_id"] for c in orphans] == ["c-orphan"]
    assert len(orphans[0]["recordings"]) == 1
    # Metrics for alerting: counts per PBX and outcome, and the last 24 hours' coverage.
    metrics = await (await api.client.get("/metrics")).text()
    assert 'recordings_calls_total{source="pbx-1",status="missing"} 1.0' in metrics
    assert "recordings_coverage_ratio 0.3333" in metrics
    assert 'recordings_coverage_gaps{status="short"} 1.0' in metrics

    # The missing call's recording comes late (its spool waited): recorded at once.
    await api.uploaded(wav_tone(10), call_id="c-none", started_at=f"{DAY}T09:03:00Z")
    late = await listed(api, call_id="c-none")
    assert late[0]["status"] == "recorded" and len(late[0]["recordings"]) == 1
    assert (await coverage(api))["counts"]["missing"] == 0


async def test_both_legs_of_a_call_are_one_call_with_two_recordings(api: Api) -> None:
    caller = await api.uploaded(wav_tone(10), call_id="c-two", leg="caller")
    callee = await api.uploaded(wav_tone(10, frequency=500), call_id="c-two", leg="callee")
    assert (caller["leg"], callee["leg"]) == ("caller", "callee")
    # A retried leg is the stored one; other audio for a stored leg is refused.
    again = await api.upload(wav_tone(10), call_id="c-two", leg="caller")
    assert again.status == 200 and (await again.json())["id"] == caller["id"]
    other = await api.upload(wav_tone(9), call_id="c-two", leg="callee")
    assert other.status == 409 and (await other.json())["reason"] == "duplicate_call_id"
    bad = await api.upload(wav_tone(1), call_id="c-three", leg="left")
    assert bad.status == 400 and (await bad.json())["reason"] == "invalid_metadata"
    # Each recording shows the call's legs together; the search by call id finds both.
    response = await api.client.get(f"/v1/recordings/{callee['id']}",
                                    headers=api.auth("supervisor"))
    assert (await response.json())["legs"] == [{"id": callee["id"], "leg": "callee"},
                                               {"id": caller["id"], "leg": "caller"}]
    response = await api.client.get("/v1/recordings", params={"call_id": "c-two"},
                                    headers=api.auth("supervisor"))
    assert {r["id"] for r in (await response.json())["items"]} == {caller["id"], callee["id"]}
    # A PUT names its leg like the POST does.
    put = await api.client.put("/v1/calls/c-two/recording", data=wav_tone(10, frequency=600),
                               params={"started_at": f"{DAY}T09:00:00Z",
                                       "purpose": "training", "leg": "mixed"},
                               headers=api.auth("ingest"))
    assert put.status == 201 and (await put.json())["leg"] == "mixed"


async def test_a_call_with_one_leg_recorded_is_partial_until_the_other_comes(
        api: Api) -> None:
    await api.uploaded(wav_tone(10), call_id="c-half", leg="caller")
    await api.uploaded(wav_tone(10), call_id="c-both", leg="caller")
    await api.uploaded(wav_tone(4), call_id="c-both", leg="callee")  # cut short
    await api.uploaded(wav_tone(10), call_id="c-mixed", leg="callee")
    await api.uploaded(wav_tone(10), call_id="c-mixed", leg="mixed")  # whole by itself
    status, _ = await post(api, [call("c-half"), call("c-both"), call("c-mixed")])
    assert status == 200
    api.clock.advance(minutes=16)
    assert await calls.reconcile(api.services) == {
        "recorded": 1, "missing": 0, "short": 1, "partial": 1}
    half = await listed(api, status="partial")
    assert [c["call_id"] for c in half] == ["c-half"]
    assert [leg["leg"] for leg in half[0]["legs"]] == ["caller"]
    both = await listed(api, call_id="c-both")
    # Two legs cover the call only as far as the shorter goes.
    assert both[0]["status"] == "short"
    assert both[0]["recorded_seconds"] == pytest.approx(4, abs=0.01)
    assert sorted(leg["leg"] for leg in both[0]["legs"]) == ["callee", "caller"]
    assert (await coverage(api))["counts"]["partial"] == 1
    metrics = await (await api.client.get("/metrics")).text()
    assert 'recordings_calls_total{source="pbx-1",status="partial"} 1.0' in metrics

    # The other leg comes late (its spool waited): the call is recorded at once.
    await api.uploaded(wav_tone(10), call_id="c-half", leg="callee")
    assert [c["status"] for c in await listed(api, call_id="c-half")] == ["recorded"]
    assert (await coverage(api))["counts"]["partial"] == 0


async def test_a_call_ending_later_waits_for_its_own_grace(api: Api) -> None:
    api.services.config = api.services.config.with_overrides(coverage_grace_minutes=0)
    status, _ = await post(api, [call("c-past"), call("c-future", start="09:10:00",
                                                      answered="09:10:01", end="09:20:00")])
    assert status == 200
    assert (await calls.reconcile(api.services))["missing"] == 1
    assert [c["status"] for c in await listed(api, call_id="c-future")] == ["pending"]


async def test_coverage_filters_by_source_and_queue_and_refuses_odd_periods(
        api: Api) -> None:
    await post(api, [call("c-1"), call("c-2", source="pbx-2", queue="sales")])
    api.clock.advance(minutes=16)
    await calls.reconcile(api.services)
    assert (await coverage(api, source="pbx-2"))["counts"]["missing"] == 1
    assert (await coverage(api, queue="billing"))["counts"]["missing"] == 1
    assert (await coverage(api, queue="nobody"))["counts"]["missing"] == 0
    for query in ({"from": f"{DAY}T10:00:00Z", "to": f"{DAY}T09:00:00Z"},
                  {"from": "2024-01-01T00:00:00Z", "to": f"{DAY}T00:00:00Z"},
                  {"from": "monday"}):
        response = await api.client.get("/v1/coverage", params=query,
                                        headers=api.auth("compliance"))
        assert response.status == 400 and (await response.json())["reason"] == "invalid_query"
    for query in ({"status": "lost"}, {"source": ""}, {"queue": " "}, {"call_id": ""}):
        response = await api.client.get("/v1/calls", params=query,
                                        headers=api.auth("compliance"))
        assert response.status == 400, query
    for role in ("ingest", "auditor", "agent"):
        for path in ("/v1/coverage", "/v1/calls"):
            response = await api.client.get(path, headers=api.auth(role))
            assert response.status == 403, (role, path)


async def test_phone_numbers_are_shown_to_compliance_only_and_reads_are_audited(
        api: Api) -> None:
    await post(api, call("c-1", phone_number="+358401234567", customer_id="C-1"))
    assert (await listed(api, role="compliance"))[0]["phone_number"] == "+358401234567"
    assert "phone_number" not in (await listed(api, role="supervisor"))[0]
    entries = await api.audit(action="calls_read")
    assert [e["actor"] for e in entries] == ["compliance", "supervisor"]
    assert "+358401234567" not in json.dumps(entries)


async def test_calls_page_newest_first_with_a_cursor(api: Api) -> None:
    await post(api, [call(f"c-{i}", start=f"09:0{i}:00", answered=None, end=f"09:0{i}:30")
                     for i in range(5)])
    seen, cursor = [], None
    while True:
        params = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        response = await api.client.get("/v1/calls", params=params,
                                        headers=api.auth("supervisor"))
        body = await response.json()
        seen += [c["call_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"c-{i}" for i in reversed(range(5))]


async def test_call_records_are_in_the_subject_export_and_go_with_erasure(api: Api) -> None:
    await api.uploaded(wav_tone(1), call_id="c-1", customer_id="C-1")
    await post(api, [call("c-1", customer_id="C-1", phone_number="+358401234567"),
                     call("c-2", customer_id="C-2")])
    response = await api.client.post("/v1/subjects/C-1/export", json={},
                                     headers=api.auth("compliance"))
    assert response.status == 200
    with zipfile.ZipFile(io.BytesIO(await response.read())) as export:
        lines = export.read("calls.jsonl").decode().splitlines()
    exported = [json.loads(line) for line in lines]
    assert [(c["call_id"], c["phone_number"]) for c in exported] == [("c-1", "+358401234567")]
    assert len(exported[0]["recordings"]) == 1
    status, body = await api.call("POST", "/v1/subjects/C-1/erasure", {"reason": "asked"})
    assert status == 200 and body["call_records_erased"] == 1
    assert [c["call_id"] for c in await listed(api)] == ["c-2"]


async def test_call_records_are_purged_after_their_retention_with_a_count(api: Api) -> None:
    await post(api, [call("c-old"), call("c-new", start="09:10:00", answered="09:10:01",
                                          end="09:11:00")])
    # 90 days (the shipped retention) after the first call began, not yet the second.
    api.clock.now = datetime(2026, 11, 24, 9, 5, tzinfo=api.clock.now.tzinfo) + timedelta(
        days=90)
    status, run = await api.call("POST", "/v1/purge-runs", {"dry_run": False})
    assert status == 201 and run["call_records_purged"] == 1, run
    response = await api.client.get("/v1/calls", params={
        "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z"}, headers=api.auth("compliance"))
    assert [c["call_id"] for c in (await response.json())["items"]] == ["c-new"]


async def test_the_reconcile_command_decides_now_and_prints_the_counts(tmp_path: Path) -> None:
    data, config_file, _ = new_service(tmp_path, "[coverage]\ngrace_minutes = 0\n")
    config = load_config(config_file, environ={}, data_dir=str(data))
    async with open_services(config, system_clock) as services:
        records = calls.parse_batch([call("c-gone"), call("c-ringing", answered=None)])
        await calls.receive(services, Actor("pbx", frozenset({"ingest"})), SYSTEM_ORIGIN,
                            records)
    done = run_cli(data, "reconcile", "--config", str(config_file), check=True)
    assert json.loads(done.stdout) == {"recorded": 0, "missing": 1, "short": 0, "partial": 0}
    again = run_cli(data, "reconcile", "--config", str(config_file), check=True)
    assert json.loads(again.stdout)["missing"] == 0  # decided once


def freeswitch_cdr(uuid: str, answered: bool = True) -> dict[str, Any]:
    """A mod_json_cdr document as FreeSWITCH posts it (encode-values on: each value
    URL-encoded), trimmed to the parts the service reads and a few it does not."""
    start = 1_795_510_800  # 2026-11-24T09:00:00Z
    return {
        "core-uuid": "c0a80101-0000-4000-8000-000000000001", "switchname": "fs-hel-1",
        "channel_data": {"state": "CS_REPORTING", "direction": "inbound"},
        "variables": {
            "uuid": uuid, "direction": "inbound", "caller_id_number": "%2B358401234567",
            "caller_id_name": "Jane%20Doe", "destination_number": "100",
            "cc_agent": "A-7", "cc_queue": "billing%40default",
            "start_epoch": str(start), "start_uepoch": f"{start}250000",
            "answer_epoch": str(start + 5) if answered else "0",
            "answer_uepoch": f"{start + 5}000000" if answered else "0",
            "end_epoch": str(start + 65), "end_uepoch": f"{start + 65}000000",
            "sip_call_id": "a84b4c76e66710%40pc33.example.com"},
        "callflow": [{"profile_index": "1", "caller_profile": {"username": "1000"}}],
    }


async def test_freeswitch_cdrs_arrive_once_in_each_shape_mod_json_cdr_posts(
        api: Api) -> None:
    import base64
    from urllib.parse import urlencode

    # Its cred, as json_cdr.conf names it: the token's name and the token.
    basic = {"Authorization": "Basic " + base64.b64encode(
        f"ingest:{api.tokens['ingest']}".encode()).decode()}
    shapes = [  # encode = false, true (a cdr= form), base64
        ("fs-json", lambda d: {"json": d, "headers": basic}),
        ("fs-form", lambda d: {"data": urlencode({"cdr": json.dumps(d)}), "headers": {
            **basic, "Content-Type": "application/x-www-form-urlencoded"}}),
        ("fs-b64", lambda d: {"data": base64.b64encode(json.dumps(d).encode()),
                              "headers": basic}),
    ]
    for uuid, shape in shapes:
        for _ in range(2):  # its retry after a lost answer
            response = await api.client.post("/v1/calls/freeswitch",
                                             **shape(freeswitch_cdr(uuid)))
            assert response.status == 200, await response.text()
        assert (await response.json())["items"][0]["outcome"] == "unchanged"
    found = {c["call_id"]: c for c in await listed(api)}
    assert sorted(found) == ["fs-b64", "fs-form", "fs-json"]
    one = found["fs-json"]
    assert (one["source"], one["agent_id"], one["queue"], one["phone_number"]) == (
        "fs-hel-1", "A-7", "billing@default", "+358401234567")
    assert (one["started_at"], one["answered_at"], one["ended_at"]) == (
        f"{DAY}T09:00:00.250000Z", f"{DAY}T09:00:05Z", f"{DAY}T09:01:05Z")
    response = await api.client.post("/v1/calls/freeswitch?source=fs-2", headers=basic,
                                      json=freeswitch_cdr("fs-ringing", answered=False))
    assert (await response.json())["items"][0] == {
        "source": "fs-2", "call_id": "fs-ringing", "outcome": "stored",
        "status": "not_expected"}


@pytest.mark.parametrize("cdr", [
    {}, {"variables": []}, {"variables": {"uuid": "x"}},
    {"variables": {**freeswitch_cdr("x")["variables"], "start_uepoch": "soon"}},
    {"variables": {**freeswitch_cdr("x")["variables"], "end_uepoch": "9" * 20}},
    {"variables": {**freeswitch_cdr("x")["variables"], "uuid": ""}},
    {"variables": {**freeswitch_cdr("x")["variables"], "cc_agent": 7}},
])
async def test_a_cdr_that_does_not_describe_a_call_is_a_400(api: Api, cdr: Any) -> None:
    response = await api.client.post("/v1/calls/freeswitch", json=cdr,
                                     headers=api.auth("ingest"))
    assert response.status == 400
    assert (await response.json())["reason"] == "invalid_call_record"
    for body in (b"cdr=%7B&cdr=1", b"!!not base64!!"):
        response = await api.client.post("/v1/calls/freeswitch", data=body,
                                         headers=api.auth("ingest"))
        assert response.status == 400


async def test_a_recording_with_one_side_silent_is_flagged_with_its_call(api: Api) -> None:
    import struct

    from tests.audio import riff_wav

    agent_only = struct.pack("<16000h", *([0, 15000] * 8000))  # the customer's side silent
    stereo = riff_wav(agent_only, channels=2, byte_rate=32000, block_align=4)
    one_sided = await api.uploaded(stereo, call_id="c-half")
    both = await api.uploaded(wav_tone(1), call_id="c-both")
    assert (one_sided["audio_check"], both["audio_check"]) == ("one_sided", "ok")
    # Recorded as two mono legs: the silent leg is silent, the call one-sided.
    silent = riff_wav(bytes(16000), byte_rate=16000, block_align=2)
    quiet_leg = await api.uploaded(silent, call_id="c-legs", leg="callee")
    await api.uploaded(wav_tone(1), call_id="c-legs", leg="caller")
    assert quiet_leg["audio_check"] == "silent"
    await post(api, [call("c-half"), call("c-both"), call("c-legs")])
    shown = {c["call_id"]: c["audio_check"] for c in await listed(api)}
    assert shown == {"c-half": "one_sided", "c-both": "ok", "c-legs": "one_sided"}
