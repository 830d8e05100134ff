"""Moments through HTTP: marked for a purpose the policy allows, audited without their
notes, read only for purposes the reader may use now, gone with the call, and in the
subject's export."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from storage import moment_store
from tests.audio import wav_tone
from tests.conftest import Api

NOTE = "customer asks for a refund of order 1234"


async def _mark(api: Api, rid: str, role: str = "supervisor", **body: Any) -> tuple[int, Any]:
    return await api.call("POST", f"/v1/recordings/{rid}/moments",
                          {"purpose": "training", "note": NOTE, **body}, role=role)


async def _moments(api: Api, rid: str, purpose: str, role: str) -> tuple[int, Any]:
    response = await api.client.get(f"/v1/recordings/{rid}/moments",
                                    headers=api.auth(role) | {"Access-Purpose": purpose})
    return response.status, await response.json()


async def test_a_supervisor_marks_moments_and_reads_them_back_in_order(api: Api) -> None:
    rec = await api.uploaded(wav_tone(10), call_id="m-1", customer_id="C-m",
                             purposes=["training", "legal_protection"])
    rid = rec["id"]
    status, span = await _mark(api, rid, at_seconds=4.5, end_seconds=7)
    assert status == 201 and span["author"] == "supervisor" and span["end_seconds"] == 7.0
    status, point = await _mark(api, rid, at_seconds=1.25)
    assert status == 201
    status, body = await _moments(api, rid, "training", "supervisor")
    assert status == 200
    assert [(m["at_seconds"], m["end_seconds"]) for m in body["items"]] == [(1.25, None),
                                                                         (4.5, 7.0)]
    # Audited as accesses for the purpose, naming the moment and never its note.
    added = await api.audit(recording_id=rid, action="moment_add")
    assert [(e["actor"], e["purpose"], e["detail"]["moment_id"]) for e in added] == [
        ("supervisor", "training", span["id"]), ("supervisor", "training", point["id"])]
    log = json.dumps(await api.audit(recording_id=rid))
    assert NOTE not in log

    # A moment made for a purpose the reader may not use is not shown to them.
    status, legal = await _mark(api, rid, role="compliance", purpose="legal_protection",
                                at_seconds=2)
    assert status == 201
    _, seen = await _moments(api, rid, "training", "supervisor")
    assert legal["id"] not in [m["id"] for m in seen["items"]]
    _, seen = await _moments(api, rid, "legal_protection", "compliance")
    assert legal["id"] in [m["id"] for m in seen["items"]]

    # Removed by its author or compliance, no one else.
    status, _ = await api.call("DELETE", f"/v1/recordings/{rid}/moments/{legal['id']}",
                               role="supervisor")
    assert status == 403
    response = await api.client.delete(f"/v1/recordings/{rid}/moments/{point['id']}",
                                       headers=api.auth("supervisor"))
    assert response.status == 204
    response = await api.client.delete(f"/v1/recordings/{rid}/moments/{point['id']}",
                                       headers=api.auth("supervisor"))
    assert response.status == 404

    # The subject's export holds them; erasure takes them with the call.
    response = await api.client.post("/v1/subjects/C-m/export", json={},
                                     headers=api.auth("compliance"))
    assert response.status == 200
    with zipfile.ZipFile(io.BytesIO(await response.read())) as export:
        lines = export.read("moments.jsonl").decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted([span["id"], legal["id"]])
    status, _ = await api.call("POST", "/v1/subjects/C-m/erasure", {"reason": "asked"})
    assert status == 200
    async with api.services.database.read() as conn:
        assert await moment_store.moments_of(conn, [rid]) == []


async def test_moments_follow_the_policy_and_bad_ones_are_refused(api: Api) -> None:
    rec = await api.uploaded(wav_tone(10), call_id="m-2", purposes=["legal_protection"])
    rid = rec["id"]
    status, problem = await _mark(api, rid, at_seconds=1)  # not kept for training
    assert status == 403
    for bad in ({"at_seconds": -1}, {"at_seconds": "1"}, {"at_seconds": 5, "end_seconds": 5},
                {"at_seconds": 11}, {"at_seconds": 1, "note": ""},
                {"at_seconds": 1, "note": "x" * 501}):
        status, problem = await _mark(api, rid, role="compliance", purpose="legal_protection",
                                      **bad)
        assert (status, problem["reason"]) == (400, "invalid_moment"), bad
    status, ok = await _mark(api, rid, role="compliance", purpose="legal_protection",
                             at_seconds=1)
    assert status == 201
    # While processing is restricted, only legal protection reads them.
    status, _ = await api.call("PUT", f"/v1/recordings/{rid}/restriction",
                               {"reason": "disputed"})
    assert status == 200
    status, seen = await _moments(api, rid, "legal_protection", "compliance")
    assert status == 200 and [m["id"] for m in seen["items"]] == [ok["id"]]
