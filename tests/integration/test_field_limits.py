"""Every text field a request writes or searches fits its column on both stacks: at its
limit it is taken, one past it is a 400 naming the field, never a 500 (PostgreSQL refuses
an over-long varchar where SQLite stores it). Every customer id the service accepts can be
named by every route that takes one."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st

from recordings_service.ingest import TEXT_FIELDS
from storage import limits
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import generated

AUDIO = wav_tone(0.2)
Send = Callable[[Api, str], Awaitable[tuple[int, Any]]]


async def _post_upload(api: Api, field: str, value: str) -> tuple[int, Any]:
    meta = {"call_id": "c-" + str(len(value)) + field, field: value}
    response = await api.upload(AUDIO, **meta)
    return response.status, await response.json()


async def _put_header(api: Api, field: str, value: str) -> tuple[int, Any]:
    meta = {"started_at": "2026-11-24T09:00:00Z", "purposes": ["training"], field: value}
    call_id = value if field == "call_id" else f"p-{len(value)}-{field}"
    if field == "call_id":
        del meta["call_id"]
    response = await api.client.put(
        f"/v1/calls/{quote(call_id, safe='')}/recording", data=AUDIO,
        headers={**api.auth("ingest"), "Recording-Metadata": json.dumps(meta)})
    return response.status, await response.json()


async def _put_query(api: Api, field: str, value: str) -> tuple[int, Any]:
    response = await api.client.put(
        f"/v1/calls/q-{len(value)}-{field}/recording", data=AUDIO,
        params={"started_at": "2026-11-24T09:00:00Z", "purpose": "training", field: value},
        headers=api.auth("ingest"))
    return response.status, await response.json()


async def _rectify(api: Api, field: str, value: str) -> tuple[int, Any]:
    rec = await api.uploaded(AUDIO, call_id=f"r-{len(value)}-{field}")
    body = {"reason": "wrong in the PBX", "queue": "q", field: value}
    return await api.call("PATCH", f"/v1/recordings/{rec['id']}", body)


async def _hold(api: Api, field: str, value: str) -> tuple[int, Any]:
    body = {"case_reference": "CASE-1", "reason": "complaint", "customer_id": "C-1",
            field: value}
    return await api.call("POST", "/v1/legal-holds", body)


async def _register(api: Api, field: str, value: str) -> tuple[int, Any]:
    body = {"type": "erasure", "customer_id": "C-1", field: value}
    return await api.call("POST", "/v1/subject-requests", body)


async def _subject(api: Api, field: str, value: str) -> tuple[int, Any]:
    customer = value if field == "customer_id" else "C-1"
    body: dict[str, Any] = {"reason": "asked by letter"}
    if field != "customer_id":
        body[field] = value
    return await api.call("POST", f"/v1/subjects/{quote(customer, safe='')}/restriction", body)


async def _erase(api: Api, field: str, value: str) -> tuple[int, Any]:
    rec = await api.uploaded(AUDIO, call_id=f"e-{len(value)}-{field}")
    body = {"reason": "asked by letter", "request_reference": "DSR-1", field: value}
    return await api.call("DELETE", f"/v1/recordings/{rec['id']}", body)


async def _search(api: Api, field: str, value: str) -> tuple[int, Any]:
    response = await api.client.get("/v1/recordings", params={field: value},
                                     headers=api.auth("supervisor"))
    return response.status, await response.json()


CASES: list[tuple[str, Send, str, int]] = [
    *((f"upload {f}", _post_upload, f, n) for f, n in TEXT_FIELDS.items()),
    ("upload call_id", _post_upload, "call_id", limits.IDENTIFIER),
    *((f"PUT header {f}", _put_header, f, n) for f, n in TEXT_FIELDS.items()),
    ("PUT path call_id", _put_header, "call_id", limits.IDENTIFIER),
    *((f"PUT query {f}", _put_query, f, n) for f, n in TEXT_FIELDS.items()),
    *((f"rectify {f}", _rectify, f, n) for f, n in TEXT_FIELDS.items()),
    ("rectify request_reference", _rectify, "request_reference", limits.IDENTIFIER),
    ("rectify reason", _rectify, "reason", limits.REASON),
    ("hold case_reference", _hold, "case_reference", limits.IDENTIFIER),
    ("hold reason", _hold, "reason", limits.REASON),
    ("hold customer_id", _hold, "customer_id", limits.IDENTIFIER),
    ("register customer_id", _register, "customer_id", limits.IDENTIFIER),
    ("register request_reference", _register, "request_reference", limits.IDENTIFIER),
    ("subject path customer_id", _subject, "customer_id", limits.IDENTIFIER),
    ("subject request_reference", _subject, "request_reference", limits.IDENTIFIER),
    ("subject reason", _subject, "reason", limits.REASON),
    ("erase reason", _erase, "reason", limits.REASON),
    ("erase request_reference", _erase, "request_reference", limits.IDENTIFIER),
    *((f"search {f}", _search, f, limits.IDENTIFIER)
      for f in ("customer_id", "call_id", "agent_id", "queue")),
]


@pytest.mark.parametrize(("send", "field", "limit"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_a_text_field_at_its_limit_is_taken_and_one_past_is_refused_by_name(
        api: Api, send: Send, field: str, limit: int) -> None:
    status, body = await send(api, field, "x" * limit)
    assert status in (200, 201), body
    status, body = await send(api, field, "y" * (limit + 1))
    assert status == 400, body
    assert field in body["detail"]


# Ids as other systems make them: CRM keys, e-mail addresses, paths, templates, any script.
_ID_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_EXAMPLES = generated(st.one_of(
    st.text(alphabet="{}/%?#.&+ ;:\\'\"<>[]|~`^@=,$!*()", min_size=1, max_size=12),
    st.text(alphabet=_ID_ALPHABET, min_size=1, max_size=40)).filter(lambda s: s.strip()), 25)
# "." and ".." alone are refused at upload: clients resolve them out of a path.
_EXAMPLES[:] = ["{C-1}", "a/b", "...", "./x", "%7B", "C 1", "?x#y",
                *(e for e in _EXAMPLES if e not in (".", ".."))]


@pytest.mark.parametrize("dots", [".", ".."])
async def test_a_customer_id_no_path_can_name_is_refused_at_upload(api: Api, dots: str) -> None:
    response = await api.upload(AUDIO, customer_id=dots)
    assert response.status == 400
    assert "customer_id" in (await response.json())["detail"]


async def test_every_customer_id_the_upload_accepts_is_reachable_by_every_subject_route(
        api: Api) -> None:
    for n, customer_id in enumerate(_EXAMPLES):
        rec = await api.uploaded(AUDIO, call_id=f"id-{n}", customer_id=customer_id)
        path = "/v1/subjects/" + quote(customer_id, safe="")
        response = await api.client.post(path + "/export", json={},
                                         headers=api.auth("compliance"))
        assert response.status == 200, (customer_id, await response.text())
        await response.read()
        page = await api.client.get("/subjects/" + quote(customer_id, safe=""),
                                    headers=api.auth("compliance"))
        assert page.status == 200, customer_id
        assert rec["id"] in await page.text()
        for action in ("restriction", "objection", "erasure"):
            status, body = await api.call("POST", f"{path}/{action}",
                                          {"reason": "asked by letter"})
            assert status == 200, (customer_id, action, body)
            assert [r["id"] for r in body["results"]] == [rec["id"]], (customer_id, action)


async def test_a_refused_data_subject_request_is_in_the_audit_log(api: Api) -> None:
    response = await api.client.post("/v1/subjects/C-1/export", data=b"{not json",
                                     headers={**api.auth("compliance"),
                                              "Content-Type": "application/json"})
    assert response.status == 400
    status, _ = await api.call("POST", "/v1/subjects/C-1/erasure", {})
    assert status == 400
    denied = await api.audit(outcome="denied")
    assert {(e["action"], e["reason"]) for e in denied} >= {
        ("export", "invalid_json"), ("erasure", "reason_required")}
