"""Retention through HTTP: purposes, restriction, legal holds, erasure, purge runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from recordings_service import policy, retention
from recordings_service.receipts import verify_receipt
from storage.schema import recording_purposes, recordings
from tests import catalog_seed as seed
from tests.audio import wav_noise, wav_tone
from tests.conftest import Api
from tests.integration.helpers import contains_plaintext_run, files_under, stored_blobs

OLD = "2020-01-10T08:00:00Z"  # every default purpose but accounting_record has lapsed


async def _purge(api: Api, dry_run: bool = False) -> dict[str, Any]:
    status, run = await api.call("POST", "/v1/purge-runs", {"dry_run": dry_run})
    assert status == 201, run
    return run  # type: ignore[no-any-return]


# --- purposes --------------------------------------------------------------------------


async def test_add_and_withdraw_purposes_recompute_purge_at(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training"])
    assert rec["purge_at"] == "2027-05-24T09:00:00Z"
    status, added = await api.call("POST", f"/v1/recordings/{rec['id']}/purposes",
                                {"purpose": "fraud_prevention", "reason": "case F-12"})
    assert status == 200
    assert added["purge_at"] == "2028-11-24T09:00:00Z"
    status, withdrawn = await api.call("DELETE",
                                    f"/v1/recordings/{rec['id']}/purposes/fraud_prevention",
                                    {"reason": "customer objected"})
    assert status == 200
    fraud = next(p for p in withdrawn["purposes"] if p["purpose"] == "fraud_prevention")
    assert fraud["active"] is False and fraud["withdrawal_reason"] == "customer objected"
    assert fraud["withdrawn_at"] == "2026-11-24T09:15:00Z"
    assert withdrawn["purge_at"] == "2027-05-24T09:00:00Z"
    entries = await api.audit(recording_id=rec["id"])
    assert [(e["action"], e["reason"]) for e in entries[-2:]] == [
        ("add_purpose", "case F-12"), ("withdraw_purpose", "customer objected")]


async def test_a_withdrawn_purpose_no_longer_opens_the_audio(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training", "legal_protection"])
    await api.call("DELETE", f"/v1/recordings/{rec['id']}/purposes/training",
                {"reason": "consent withdrawn"})
    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 403 and (await response.json())["reason"] == "purpose_withdrawn"
    assert (await api.audio(rec["id"], "legal_protection", "compliance")).status == 200


async def test_withdrawing_everything_makes_the_recording_due_now(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training"])
    _, body = await api.call("DELETE", f"/v1/recordings/{rec['id']}/purposes/training",
                          {"reason": "consent withdrawn"})
    assert body["purge_at"] == "2026-11-24T09:15:00Z"
    assert (await _purge(api))["purged"] == [rec["id"]]


async def test_a_legal_obligation_cannot_be_withdrawn(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["accounting_record"])
    status, problem = await api.call(
        "DELETE", f"/v1/recordings/{rec['id']}/purposes/accounting_record",
        {"reason": "customer asked"})
    assert status == 409 and problem["reason"] == "legal_obligation"
    assert "2036-11-24T09:00:00Z" in problem["detail"]


@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), [
    ("POST", "purposes", {"purpose": "training"}, 400, "reason_required"),
    ("POST", "purposes", {"purpose": "marketing", "reason": "x"}, 400, "unknown_purpose"),
    ("DELETE", "purposes/security", {"reason": "x"}, 404, "not_found"),
    ("PUT", "restriction", {"reason": ""}, 400, "reason_required"),
])
async def test_bad_changes_are_refused(api: Api, method: str, path: str,
                                       body: dict[str, Any], status: int, reason: str) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training"])
    got, problem = await api.call(method, f"/v1/recordings/{rec['id']}/{path}", body)
    assert (got, problem["reason"]) == (status, reason)


async def test_changes_need_the_compliance_role(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1))
    status, problem = await api.call("PUT", f"/v1/recordings/{rec['id']}/restriction",
                                  {"reason": "x"}, role="supervisor")
    assert status == 403 and problem["reason"] == "missing_role"


# --- restriction -----------------------------------------------------------------------


async def test_restriction_limits_access_and_blocks_purge_until_lifted(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), started_at=OLD,
                             purposes=["training", "legal_protection"])
    status, body = await api.call("PUT", f"/v1/recordings/{rec['id']}/restriction",
                               {"reason": "dispute D-9"})
    assert status == 200
    assert body["restriction"] == {"reason": "dispute D-9", "placed_at": "2026-11-24T09:15:00Z"}
    run = await _purge(api)
    assert run["purged"] == [] and run["skipped"] == [{"id": rec["id"], "reason": "restricted"}]
    status, body = await api.call("DELETE", f"/v1/recordings/{rec['id']}/restriction",
                               {"reason": "dispute settled"})
    assert status == 200 and body["restriction"] is None
    assert (await _purge(api))["purged"] == [rec["id"]]


# --- legal holds -----------------------------------------------------------------------


async def test_hold_by_recording_ids_blocks_purge_until_every_hold_is_released(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), started_at=OLD, purposes=["training"])
    holds = []
    for case in ("CASE-1", "CASE-2"):
        status, hold = await api.call("POST", "/v1/legal-holds", {
            "case_reference": case, "reason": "litigation", "recording_ids": [rec["id"]]})
        assert status == 201 and hold["recording_ids"] == [rec["id"]]
        assert hold["placed_by"] == "compliance" and hold["released_at"] is None
        holds.append(hold)
        api.clock.advance(seconds=1)
    _, meta = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert [h["case_reference"] for h in meta["legal_holds"]] == ["CASE-1", "CASE-2"]
    assert (await _purge(api))["skipped"] == [{"id": rec["id"], "reason": "legal_hold"}]

    status, released = await api.call("POST", f"/v1/legal-holds/{holds[0]['id']}/release",
                                   {"reason": "case closed"})
    assert status == 200 and released["released_at"] == "2026-11-24T09:15:02Z"
    again, problem = await api.call("POST", f"/v1/legal-holds/{holds[0]['id']}/release",
                                 {"reason": "again"})
    assert again == 409 and problem["reason"] == "already_released"
    assert (await _purge(api))["skipped"] == [{"id": rec["id"], "reason": "legal_hold"}]
    await api.call("POST", f"/v1/legal-holds/{holds[1]['id']}/release", {"reason": "closed"})
    assert (await _purge(api))["purged"] == [rec["id"]]


async def test_hold_by_customer_covers_later_uploads(api: Api) -> None:
    before = await api.uploaded(wav_tone(0.1), call_id="b", customer_id="C-5", started_at=OLD)
    other = await api.uploaded(wav_tone(0.1, frequency=500), call_id="o", customer_id="C-6",
                               started_at=OLD)
    status, hold = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "REG-77", "reason": "regulator inquiry", "customer_id": "C-5"})
    assert status == 201 and hold["recording_ids"] == [before["id"]]
    later = await api.uploaded(wav_tone(0.1, frequency=700), call_id="l", customer_id="C-5",
                               started_at=OLD)
    assert [h["case_reference"] for h in later["legal_holds"]] == ["REG-77"]
    run = await _purge(api)
    assert run["purged"] == [other["id"]]
    assert sorted(s["id"] for s in run["skipped"]) == sorted([before["id"], later["id"]])
    _, fetched = await api.call("GET", f"/v1/legal-holds/{hold['id']}")
    assert sorted(fetched["recording_ids"]) == sorted([before["id"], later["id"]])
    _, listed = await api.call("GET", "/v1/legal-holds")
    assert [h["id"] for h in listed["items"]] == [hold["id"]]


@pytest.mark.parametrize(("body", "reason"), [
    ({"reason": "x", "recording_ids": ["rec_x"]}, "case_reference_required"),
    ({"case_reference": "C", "recording_ids": ["rec_x"]}, "reason_required"),
    ({"case_reference": "C", "reason": "x"}, "invalid_hold"),
    ({"case_reference": "C", "reason": "x", "recording_ids": ["a"], "customer_id": "c"},
     "invalid_hold"),
    ({"case_reference": "C", "reason": "x", "recording_ids": ["rec_missing"]},
     "unknown_recording"),
])
async def test_bad_holds_are_refused(api: Api, body: dict[str, Any], reason: str) -> None:
    status, problem = await api.call("POST", "/v1/legal-holds", body)
    assert status == 400 and problem["reason"] == reason


# --- erasure ---------------------------------------------------------------------------


async def _public_key(api: Api) -> Ed25519PublicKey:
    pem = await (await api.client.get("/v1/audit/public-key", headers=api.auth("auditor"))
                 ).text()
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    return key


async def test_erasure_leaves_a_tombstone_and_a_verifiable_receipt(api: Api) -> None:
    audio = wav_tone(0.3)
    rec = await api.uploaded(audio, customer_id="C-1", phone_number="+35840111",
                             agent_id="A-1", queue="billing")
    link = await (await api.client.post(f"/v1/recordings/{rec['id']}/playback-links",
                                        json={"purpose": "training"},
                                        headers=api.auth("supervisor"))).json()
    status, tomb = await api.call("DELETE", f"/v1/recordings/{rec['id']}",
                               {"reason": "data subject request", "request_reference": "DSR-1"})
    assert status == 200
    assert tomb["state"] == "purged" and tomb["purged_at"] == "2026-11-24T09:15:00Z"
    assert tomb["purge_reason"] == "erasure request: data subject request"
    for field in ("customer_id", "phone_number", "agent_id", "call_id", "queue"):
        assert field not in tomb
    assert sorted(tomb["purposes"]) == ["legal_protection", "training"]
    receipt = tomb["deletion_receipt"]
    assert receipt["receipt"]["recording_id"] == rec["id"]
    assert receipt["receipt"]["audio_sha256"] == rec["sha256"]
    assert receipt["receipt"]["data_key_destroyed"] and receipt["receipt"]["blob_deleted"]
    key = await _public_key(api)
    assert verify_receipt(receipt, key)
    forged = {**receipt, "receipt": {**receipt["receipt"], "recording_id": "rec_other"}}
    assert not verify_receipt(forged, key)

    assert (await api.audio(rec["id"], "training", "supervisor")).status == 410
    assert (await api.client.get(link["url"])).status == 410
    _, again = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert again == tomb
    entry = (await api.audit(action="erasure"))[-1]
    assert entry["actor"] == "compliance" and entry["detail"]["request_reference"] == "DSR-1"
    assert await stored_blobs(api.services) == []


async def test_erasure_is_refused_with_the_reason_and_date(api: Api) -> None:
    kept = await api.uploaded(wav_tone(0.1), call_id="k",
                              purposes=["training", "accounting_record"])
    status, problem = await api.call("DELETE", f"/v1/recordings/{kept['id']}",
                                  {"reason": "customer asked"})
    assert status == 409 and problem["reason"] == "legal_obligation"
    assert "2036-11-24T09:00:00Z" in problem["detail"]

    held = await api.uploaded(wav_tone(0.1, frequency=600), call_id="h")
    await api.call("POST", "/v1/legal-holds", {"case_reference": "LIT-3", "reason": "suit",
                                                 "recording_ids": [held["id"]]})
    status, problem = await api.call("DELETE", f"/v1/recordings/{held['id']}",
                                  {"reason": "customer asked"})
    assert status == 409 and problem["reason"] == "legal_hold" and "LIT-3" in problem["detail"]

    restricted = await api.uploaded(wav_tone(0.1, frequency=800), call_id="r")
    await api.call("PUT", f"/v1/recordings/{restricted['id']}/restriction",
                {"reason": "dispute"})
    status, problem = await api.call("DELETE", f"/v1/recordings/{restricted['id']}",
                                  {"reason": "customer asked"})
    assert status == 409 and problem["reason"] == "restricted"
    denied = await api.audit(action="erasure", outcome="denied")
    assert [e["reason"] for e in denied] == ["legal_obligation", "legal_hold", "restricted"]
    assert len(await stored_blobs(api.services)) == 3


# --- purge runs ------------------------------------------------------------------------


async def test_a_backfilled_old_recording_is_due_at_once_and_dry_run_changes_nothing(
        api: Api) -> None:
    old = await api.uploaded(wav_tone(0.1), call_id="old", started_at=OLD)
    fresh = await api.uploaded(wav_tone(0.1, frequency=500), call_id="new")
    assert old["purge_at"] == "2023-01-10T08:00:00Z"
    dry = await _purge(api, dry_run=True)
    assert dry["dry_run"] is True and dry["purged"] == [old["id"]]
    api.clock.advance(seconds=1)
    _, still = await api.call("GET", f"/v1/recordings/{old['id']}")
    assert still["state"] == "active"
    real = await _purge(api)
    assert real["purged"] == [old["id"]] and real["skipped"] == []
    _, gone = await api.call("GET", f"/v1/recordings/{old['id']}")
    assert gone["state"] == "purged" and gone["purge_reason"] == "retention expired"
    _, kept = await api.call("GET", f"/v1/recordings/{fresh['id']}")
    assert kept["state"] == "active"
    status, runs = await api.call("GET", "/v1/purge-runs")
    assert status == 200 and [r["run_id"] for r in runs["items"]] == [real["run_id"],
                                                                      dry["run_id"]]
    entry = (await api.audit(action="purge"))[-1]
    assert entry["actor"] == "system:retention"
    assert entry["recording_id"] == old["id"]
    assert entry["detail"]["triggered_by"] == "compliance"
    assert entry["detail"]["run_id"] == real["run_id"]


async def test_expiry_over_time_purges_what_is_no_longer_needed(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training", "quality_review"])
    assert (await _purge(api))["purged"] == []
    api.clock.advance(days=182)  # six months and a bit: both purposes have lapsed
    assert (await _purge(api))["purged"] == [rec["id"]]
    assert (await _purge(api))["purged"] == []  # idempotent


async def test_after_purge_no_audio_and_no_wrapped_key_remain(api: Api) -> None:
    audio = wav_noise(200_000, seed=11)
    rec = await api.uploaded(audio, started_at=OLD, purposes=["training"])
    async with api.services.database.read() as conn:
        wrapped = (await conn.execute(recordings.select().where(
            recordings.c.id == rec["id"]))).one().wrapped_dek
    assert (await _purge(api))["purged"] == [rec["id"]]
    async with api.services.database.read() as conn:
        row = (await conn.execute(recordings.select().where(
            recordings.c.id == rec["id"]))).one()
    assert row.wrapped_dek is None and row.blob_name is None and row.customer_id is None
    for path in files_under(api.services.config.data_dir):
        data = path.read_bytes()
        assert wrapped not in data, path.name
        assert not contains_plaintext_run(data, audio), path.name


class Crash(Exception):
    pass


@pytest.mark.parametrize(("target", "step", "left_in_state"), [
    # inside step 1: the transaction rolls back, nothing has happened yet
    (retention.retention_store, "mark_purging_and_destroy_keys", "active"),
    # after step 1: marked purging, data key destroyed, blob still there
    (retention, "_delete_blobs", "purging"),
    # after step 2: blob deleted, tombstone not yet written
    (retention, "_tombstone_all", "purging"),
])
async def test_a_purge_interrupted_at_any_step_completes_on_the_next_run(
        api: Api, monkeypatch: pytest.MonkeyPatch, target: object, step: str,
        left_in_state: str) -> None:
    rec = await api.uploaded(wav_tone(0.1), started_at=OLD, purposes=["training"])

    async def crash(*args: object, **kwargs: object) -> None:
        raise Crash(step)

    monkeypatch.setattr(target, step, crash)
    with pytest.raises(Crash):
        await retention.run_purge(api.services, retention.RETENTION_ACTOR,
                                  retention.SYSTEM_ORIGIN, dry_run=False)
    async with api.services.database.read() as conn:
        half = (await conn.execute(recordings.select().where(
            recordings.c.id == rec["id"]))).one()
    assert half.state == left_in_state
    if left_in_state == "purging":
        assert half.wrapped_dek is None  # the key went first
        assert (await api.audio(rec["id"], "training", "supervisor")).status == 410
    monkeypatch.undo()

    run = await _purge(api)
    assert run["purged"] == [rec["id"]]
    _, tomb = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert tomb["state"] == "purged" and tomb["deletion_receipt"]
    assert await stored_blobs(api.services) == []
    assert len(await api.audit(action="purge", recording_id=rec["id"])) == 1
    assert (await _purge(api))["purged"] == []


async def test_changed_retention_applies_to_stored_recordings_and_is_reported(
        api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), purposes=["training"])
    svc = api.services
    shorter = {**svc.config.purposes}
    shorter["training"] = type(shorter["training"])("training", "consent", 1,
                                                    frozenset({"supervisor"}))
    svc.config = svc.config.with_overrides(purposes=shorter)
    changes = await retention.apply_configured_retention(svc)  # as at the next start
    assert changes == [{"purpose": "training", "from_months": 6, "to_months": 1,
                        "recordings": 1}]
    _, moved = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert moved["purge_at"] == "2026-12-24T09:00:00Z"
    assert (await _purge(api, dry_run=True))["retention_changes"][0]["to_months"] == 1
    run = await _purge(api)
    assert run["retention_changes"][0]["purpose"] == "training"
    assert (await _purge(api))["retention_changes"] == []
    assert await retention.apply_configured_retention(svc) == []


async def test_a_changed_retention_reaches_every_recording_a_batch_at_a_time(
        api: Api) -> None:
    svc = api.services
    await seed.seed_recordings(svc.database, 2_500, api.clock())  # 2,498 active
    shorter = {**svc.config.purposes}
    shorter["training"] = type(shorter["training"])("training", "consent", 1,
                                                    frozenset({"supervisor"}))
    svc.config = svc.config.with_overrides(purposes=shorter)
    changes = await retention.apply_configured_retention(svc)
    assert changes == [{"purpose": "training", "from_months": 6, "to_months": 1,
                        "recordings": 2_498}]  # the two tombstones are left alone
    async with svc.database.read() as conn:
        expiries = (await conn.execute(
            select(recording_purposes.c.recording_id, recording_purposes.c.expires_at,
                   recordings.c.started_at)
            .join(recordings, recordings.c.id == recording_purposes.c.recording_id)
            .where(recording_purposes.c.purpose == "training",
                   recordings.c.state == "active"))).all()
    assert len(expiries) == 2_498
    assert all(row.expires_at == policy.add_months(row.started_at, 1) for row in expiries)
    assert len(await api.audit(action="retention_recomputed")) == 1


async def test_purge_runs_are_paginated_newest_first(api: Api) -> None:
    ids = []
    for _ in range(3):
        ids.append((await _purge(api, dry_run=True))["run_id"])
        api.clock.advance(seconds=1)
    _, first = await api.call("GET", "/v1/purge-runs?limit=2")
    _, second = await api.call("GET", f"/v1/purge-runs?limit=2&cursor={first['next_cursor']}")
    assert [r["run_id"] for r in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None


async def test_erasing_twice_answers_the_same_tombstone(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1))
    _, first = await api.call("DELETE", f"/v1/recordings/{rec['id']}", {"reason": "asked"})
    status, second = await api.call("DELETE", f"/v1/recordings/{rec['id']}",
                                 {"reason": "asked again"})
    assert status == 200 and second == first
    missing, problem = await api.call("DELETE", "/v1/recordings/rec_none", {"reason": "x"})
    assert missing == 404 and problem["reason"] == "not_found"
    assert len(await api.audit(action="erasure", outcome="allowed")) == 1


async def test_two_purge_runs_at_once_report_each_others_work_as_purged_elsewhere(
        api: Api) -> None:
    ids = {(await api.uploaded(wav_tone(0.05, frequency=300 + i), call_id=f"due-{i}",
                               started_at=OLD, purposes=["training"]))["id"]
           for i in range(30)}
    api.services.config = api.services.config.with_overrides(purge_batch=7)
    runs = await asyncio.gather(*(
        retention.run_purge(api.services, retention.RETENTION_ACTOR, retention.SYSTEM_ORIGIN,
                            dry_run=False) for _ in range(2)))
    purged = [i for run in runs for i in run["purged"]]
    assert sorted(purged) == sorted(ids)  # each purged exactly once, by one of the runs
    reasons = {s["reason"] for run in runs for s in run["skipped"]}
    assert reasons <= {"purged_elsewhere"}, runs
    for run in runs:
        elsewhere = {s["id"] for s in run["skipped"]}
        assert elsewhere <= ids - set(run["purged"])
