"""Data-subject rights through HTTP: export, erasure, restriction, objection, rectification,
and the register of requests."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from recordings_service import auditing, export
from recordings_service.logs import JsonFormatter, quiet_third_party_loggers
from tests.audio import FORMATS, wav_tone
from tests.conftest import Api

OLD = "2020-01-10T08:00:00Z"


async def _export(api: Api, customer_id: str, **body: str) -> zipfile.ZipFile:
    response = await api.client.post(f"/v1/subjects/{customer_id}/export", json=body,
                                     headers=api.auth("compliance"))
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(await response.read()))


async def test_export_holds_everything_kept_about_the_subject(api: Api) -> None:
    audio = {fmt: FORMATS[fmt][1]() for fmt in ("wav", "mp3", "flac", "opus")}
    recs = {fmt: await api.uploaded(data, call_id=f"call-{fmt}", customer_id="C-42")
            for fmt, data in audio.items()}
    other = await api.uploaded(wav_tone(0.2, frequency=900), call_id="other",
                               customer_id="C-43")
    purged = await api.uploaded(wav_tone(0.2, frequency=300), call_id="gone",
                                customer_id="C-42")
    await api.call("DELETE", f"/v1/recordings/{purged['id']}", {"reason": "asked"})
    await api.call("POST", "/v1/legal-holds", {
        "case_reference": "CASE-9", "reason": "complaint", "recording_ids": [recs["mp3"]["id"]]})
    await api.audio(recs["wav"]["id"], "training", "supervisor")
    await api.audio(recs["wav"]["id"], "training", "supervisor", {"Range": "bytes=0-9"})
    await api.audio(recs["flac"]["id"], "legal_protection", "compliance")

    archive = await _export(api, "C-42", request_reference="DSR-7")
    names = archive.namelist()
    assert names[:2] == ["summary.txt", "manifest.json"] and names[-1] == "access-log.jsonl"
    assert archive.testzip() is None

    manifest = json.loads(archive.read("manifest.json"))
    by_id = {item["id"]: item for item in manifest}
    assert set(by_id) == {r["id"] for r in recs.values()} | {purged["id"]}
    assert other["id"] not in by_id
    assert by_id[purged["id"]]["state"] == "purged"
    assert "customer_id" not in by_id[purged["id"]]
    assert by_id[recs["mp3"]["id"]]["legal_holds"][0]["case_reference"] == "CASE-9"

    for fmt, rec in recs.items():
        ext = {"wav": "wav", "mp3": "mp3", "flac": "flac", "opus": "ogg"}[fmt]
        assert archive.read(f"audio/{rec['id']}.{ext}") == audio[fmt]
    assert not any(purged["id"] in name for name in names if name.startswith("audio/"))

    log = [json.loads(line) for line in archive.read("access-log.jsonl").splitlines()]
    streams = [e for e in log if e["action"] == "stream" and e["outcome"] == "allowed"]
    assert [(e["recording_id"], e["actor"], e["purpose"]) for e in streams] == [
        (recs["wav"]["id"], "supervisor", "training"),
        (recs["wav"]["id"], "supervisor", "training"),
        (recs["flac"]["id"], "compliance", "legal_protection")]
    assert {e["recording_id"] for e in log} <= set(by_id)
    assert any(e["action"] == "erasure" and e["recording_id"] == purged["id"] for e in log)

    summary = archive.read("summary.txt").decode()
    assert "customer C-42" in summary
    assert "training (legal basis: consent), until 2027-05-24" in summary
    assert "supervisor listened for training: 2 time(s)" in summary
    assert "under legal hold" in summary
    assert f"Recording {purged['id']}: deleted on 2026-11-24" in summary

    exported = await api.audit(action="export")
    assert {e["recording_id"] for e in exported} == {r["id"] for r in recs.values()}
    _, register = await api.call("GET", "/v1/subject-requests")
    access = [r for r in register["items"] if r["type"] == "access"]
    assert access[0]["request_reference"] == "DSR-7" and access[0]["completed_at"]
    assert access[0]["outcome"] == {"recordings": 5, "audio_files": 4,
                                    "access_entries": len(log),
                                    "export_sha256": access[0]["outcome"]["export_sha256"],
                                    "export_bytes": access[0]["outcome"]["export_bytes"]}


async def test_unknown_subject_gets_an_empty_answer(api: Api) -> None:
    archive = await _export(api, "nobody")
    assert json.loads(archive.read("manifest.json")) == []
    assert archive.read("access-log.jsonl") == b""
    for action in ("erasure", "restriction", "objection"):
        status, body = await api.call("POST", f"/v1/subjects/nobody/{action}",
                                   {"reason": "request"})
        assert status == 200 and body["results"] == []


async def test_subject_erasure_answers_per_recording_and_is_safe_to_repeat(api: Api) -> None:
    plain = await api.uploaded(wav_tone(0.1), call_id="a", customer_id="C-1")
    held = await api.uploaded(wav_tone(0.1, frequency=500), call_id="b", customer_id="C-1")
    books = await api.uploaded(wav_tone(0.1, frequency=700), call_id="c", customer_id="C-1",
                               purposes=["training", "accounting_record"])
    await api.call("POST", "/v1/legal-holds", {"case_reference": "LIT-1", "reason": "suit",
                                                 "recording_ids": [held["id"]]})
    status, body = await api.call("POST", "/v1/subjects/C-1/erasure",
                               {"reason": "customer asked", "request_reference": "DSR-1"})
    assert status == 200
    results = {r["id"]: r for r in body["results"]}
    assert results[plain["id"]] == {"id": plain["id"], "outcome": "purged", "reason": None,
                                    "until": None}
    assert results[held["id"]]["outcome"] == "refused"
    assert results[held["id"]]["reason"] == "legal_hold"
    assert results[books["id"]] == {"id": books["id"], "outcome": "refused",
                                    "reason": "legal_obligation",
                                    "until": "2036-11-24T09:00:00Z"}
    assert body["subject_request"]["outcome"]["outcomes"] == {"purged": 1, "refused": 2}
    _, again = await api.call("POST", "/v1/subjects/C-1/erasure", {"reason": "again"})
    assert {r["id"]: r["outcome"] for r in again["results"]} == {
        plain["id"]: "purged", held["id"]: "refused", books["id"]: "refused"}
    assert len(await api.audit(action="erasure", outcome="allowed")) == 1


async def test_objection_withdraws_only_legitimate_interest_and_consent(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), customer_id="C-2", purposes=[
        "training", "legal_protection", "service_verification", "accounting_record"])
    status, body = await api.call("POST", "/v1/subjects/C-2/objection",
                               {"reason": "objects to processing"})
    assert status == 200
    [result] = body["results"]
    assert sorted(result["withdrawn"]) == ["legal_protection", "training"]
    assert sorted(result["still_kept_for"]) == ["accounting_record", "service_verification"]
    assert result["purge_at"] == "2036-11-24T09:00:00Z"
    _, meta = await api.call("GET", f"/v1/recordings/{rec['id']}")
    withdrawn = {p["purpose"] for p in meta["purposes"] if p["withdrawn_at"]}
    assert withdrawn == {"legal_protection", "training"}
    _, again = await api.call("POST", "/v1/subjects/C-2/objection", {"reason": "again"})
    assert again["results"][0]["outcome"] == "unchanged"


async def test_subject_restriction_restricts_every_recording(api: Api) -> None:
    recs = [await api.uploaded(wav_tone(0.1, frequency=300 + i), call_id=f"r{i}",
                               customer_id="C-3") for i in range(3)]
    status, body = await api.call("POST", "/v1/subjects/C-3/restriction",
                               {"reason": "dispute"})
    assert status == 200
    assert {r["outcome"] for r in body["results"]} == {"restricted"}
    for rec in recs:
        assert (await api.audio(rec["id"], "training", "supervisor")).status == 403


async def test_subject_actions_need_a_reason_and_the_role(api: Api) -> None:
    status, problem = await api.call("POST", "/v1/subjects/C-1/erasure", {})
    assert status == 400 and problem["reason"] == "reason_required"
    status, problem = await api.call("POST", "/v1/subjects/C-1/erasure", {"reason": "x"},
                                  role="supervisor")
    assert status == 403


async def test_rectification_is_audited_by_field_name_only(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    quiet_third_party_loggers()
    caplog.set_level(logging.DEBUG)
    rec = await api.uploaded(wav_tone(0.1), customer_id="WRONG-CUSTOMER-1",
                             phone_number="+358400000001")
    status, body = await api.call("PATCH", f"/v1/recordings/{rec['id']}", {
        "customer_id": "RIGHT-CUSTOMER-2", "phone_number": "+358400000002",
        "queue": rec["queue"], "reason": "wrong customer linked",
        "request_reference": "DSR-R"})
    assert status == 200
    assert body["customer_id"] == "RIGHT-CUSTOMER-2"
    assert body["phone_number"] == "+358400000002"
    [entry] = await api.audit(action="rectify")
    assert entry["detail"]["fields"] == ["customer_id", "phone_number"]
    assert entry["reason"] == "wrong customer linked"
    everything = json.dumps(await api.audit())
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for value in ("WRONG-CUSTOMER-1", "RIGHT-CUSTOMER-2", "+358400000001", "+358400000002"):
        assert value not in logged
    assert "WRONG-CUSTOMER-1" not in everything and "+358400000002" not in everything
    moved = json.loads((await _export(api, "RIGHT-CUSTOMER-2")).read("manifest.json"))
    assert [m["id"] for m in moved] == [rec["id"]]
    assert json.loads((await _export(api, "WRONG-CUSTOMER-1")).read("manifest.json")) == []


@pytest.mark.parametrize(("body", "status", "reason"), [
    ({"agent_id": "a"}, 400, "reason_required"),
    ({"reason": "x"}, 400, "invalid_metadata"),
    ({"reason": "x", "started_at": "2026-01-01T00:00:00Z"}, 400, "invalid_metadata"),
    ({"reason": "x", "direction": "up"}, 400, "invalid_metadata"),
    ({"reason": "x", "ended_at": "2020-01-01T00:00:00Z"}, 400, "invalid_metadata"),
])
async def test_bad_rectifications_are_refused(api: Api, body: dict[str, Any], status: int,
                                              reason: str) -> None:
    rec = await api.uploaded(wav_tone(0.1))
    got, problem = await api.call("PATCH", f"/v1/recordings/{rec['id']}", body)
    assert (got, problem["reason"]) == (status, reason)


async def test_a_purged_recording_cannot_be_rectified(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1))
    await api.call("DELETE", f"/v1/recordings/{rec['id']}", {"reason": "asked"})
    status, problem = await api.call("PATCH", f"/v1/recordings/{rec['id']}",
                                  {"reason": "x", "queue": "q"})
    assert status == 410 and problem["reason"] == "purged"


async def test_the_register_tracks_the_one_month_deadline(api: Api) -> None:
    received = (api.clock() - timedelta(days=40)).isoformat().replace("+00:00", "Z")
    status, late = await api.call("POST", "/v1/subject-requests", {
        "type": "access", "customer_id": "C-8", "request_reference": "LETTER-1",
        "received_at": received})
    assert status == 201
    assert late["due_at"] == "2026-11-15T09:15:00Z" and late["overdue"] is True
    _, fresh = await api.call("POST", "/v1/subject-requests", {
        "type": "erasure", "customer_id": "C-8", "request_reference": "LETTER-2"})
    assert fresh["overdue"] is False

    metrics = await (await api.client.get("/metrics")).text()
    assert re.search(r"^recordings_subject_requests_overdue 1\.0$", metrics, re.M)
    _, open_ = await api.call("GET", "/v1/subject-requests?open=true")
    assert [r["request_reference"] for r in open_["items"]] == ["LETTER-1", "LETTER-2"]

    await _export(api, "C-8", request_reference="LETTER-1")
    _, done = await api.call("GET", f"/v1/subject-requests/{late['id']}")
    assert done["completed_at"] == "2026-11-24T09:15:00Z" and done["overdue"] is False
    metrics = await (await api.client.get("/metrics")).text()
    assert re.search(r"^recordings_subject_requests_overdue 0\.0$", metrics, re.M)
    _, open_ = await api.call("GET", "/v1/subject-requests?open=true")
    assert [r["request_reference"] for r in open_["items"]] == ["LETTER-2"]


@pytest.mark.parametrize("body", [
    {"type": "gossip", "customer_id": "c"},
    {"type": "access"},
    {"type": "access", "customer_id": "c", "received_at": "2030-01-01T00:00:00Z"},
])
async def test_bad_register_entries_are_refused(api: Api, body: dict[str, Any]) -> None:
    status, problem = await api.call("POST", "/v1/subject-requests", body)
    assert status == 400 and problem["reason"] == "invalid_request"


async def test_an_export_whose_audit_entry_cannot_be_stored_sends_no_byte_of_the_zip(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await api.uploaded(wav_tone(0.2), customer_id="C-77", phone_number="+358401112223")

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(auditing, "append", refuse)
    response = await api.client.post("/v1/subjects/C-77/export", json={},
                                     headers=api.auth("compliance"))
    assert response.status == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert b"+358401112223" not in await response.read()


async def test_a_failure_inside_the_zip_cuts_the_connection_instead_of_answering_twice(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await api.uploaded(wav_tone(0.2), customer_id="C-78")

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("the catalog went away mid-export")

    monkeypatch.setattr(export, "_summary_lines", broken)
    response = await api.client.post("/v1/subjects/C-78/export", json={},
                                     headers=api.auth("compliance"))
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


async def test_a_request_says_what_became_of_it_never_completed_when_refused(
        api: Api) -> None:
    held = await api.uploaded(wav_tone(0.1), call_id="h1", customer_id="C-held")
    status, hold = await api.call("POST", "/v1/legal-holds", {
        "case_reference": "LIT-9", "reason": "suit", "recording_ids": [held["id"]]})
    assert status == 201
    _, registered = await api.call("POST", "/v1/subject-requests", {
        "type": "erasure", "customer_id": "C-held", "request_reference": "DSR-H"})
    assert registered["state"] == "open"

    _, refused = await api.call("POST", "/v1/subjects/C-held/erasure",
                                {"reason": "asked", "request_reference": "DSR-H"})
    assert refused["subject_request"]["id"] == registered["id"]
    assert refused["subject_request"]["state"] == "refused"

    await api.uploaded(wav_tone(0.1, frequency=600), call_id="p1", customer_id="C-part")
    await api.uploaded(wav_tone(0.1, frequency=700), call_id="p2", customer_id="C-part",
                       purposes=["training", "accounting_record"])
    _, partly = await api.call("POST", "/v1/subjects/C-part/erasure",
                               {"reason": "asked", "request_reference": "DSR-P"})
    assert partly["subject_request"]["state"] == "partially_completed"
    # Each recording's outcome is kept with the request.
    kept = partly["subject_request"]["outcome"]["results"]
    assert sorted(r["outcome"] for r in kept) == ["purged", "refused"]

    # The hold ends; the same request is answered again, on its own row.
    status, _ = await api.call("POST", f"/v1/legal-holds/{hold['id']}/release",
                               {"reason": "settled"})
    assert status == 200
    _, again = await api.call("POST", "/v1/subjects/C-held/erasure",
                              {"reason": "hold ended", "request_reference": "DSR-H"})
    assert again["subject_request"]["id"] == registered["id"]
    assert again["subject_request"]["state"] == "completed"
    _, mine = await api.call("GET", "/v1/subject-requests?customer_id=C-held")
    assert [r["id"] for r in mine["items"]] == [registered["id"]]


async def test_a_reference_names_one_request(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.1), call_id="r1", customer_id="C-other")
    status, first = await api.call("POST", "/v1/subject-requests", {
        "type": "access", "customer_id": "C-1", "request_reference": "DSR-7"})
    assert status == 201
    status, problem = await api.call("POST", "/v1/subject-requests", {
        "type": "access", "customer_id": "C-1", "request_reference": "DSR-7"})
    assert (status, problem["reason"]) == (409, "duplicate_reference")
    assert first["id"] in problem["detail"]
    # Used for another subject's erasure, it is refused before anything is erased.
    status, problem = await api.call("POST", "/v1/subjects/C-other/erasure",
                                     {"reason": "asked", "request_reference": "DSR-7"})
    assert (status, problem["reason"]) == (409, "duplicate_reference")
    assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    _, register = await api.call("GET", "/v1/subject-requests")
    assert [r["request_reference"] for r in register["items"]] == ["DSR-7"]


async def test_the_register_filters_by_customer(api: Api) -> None:
    for customer in ("C-a", "C-b", "C-a"):
        status, _ = await api.call("POST", "/v1/subject-requests",
                                   {"type": "access", "customer_id": customer})
        assert status == 201
    _, mine = await api.call("GET", "/v1/subject-requests?customer_id=C-a")
    assert [r["customer_id"] for r in mine["items"]] == ["C-a", "C-a"]
    status, problem = await api.call("GET", "/v1/subject-requests?customer_id=")
    assert (status, problem["reason"]) == (400, "invalid_query")


async def test_the_access_request_keeps_the_sha256_of_the_zip_handed_over(api: Api) -> None:
    await api.uploaded(wav_tone(0.1), call_id="x1", customer_id="C-x")
    response = await api.client.post("/v1/subjects/C-x/export",
                                     json={"request_reference": "DSR-X"},
                                     headers=api.auth("compliance"))
    assert response.status == 200
    body = await response.read()
    _, register = await api.call("GET", "/v1/subject-requests?customer_id=C-x")
    (request,) = register["items"]
    assert request["state"] == "completed"
    assert request["outcome"]["export_sha256"] == hashlib.sha256(body).hexdigest()
    assert request["outcome"]["export_bytes"] == len(body)
