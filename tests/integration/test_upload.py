"""Uploads: every format round-trips, bad input is refused cleanly, nothing half-written."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os

import aiohttp
import pytest

from tests.audio import FORMATS, wav_noise, wav_tone
from tests.conftest import Api
from tests.integration.helpers import (
    contains_plaintext_run,
    files_under,
    incomplete,
    recording_count,
    stored_blobs,
)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_format_round_trips_byte_for_byte(api: Api, fmt: str) -> None:
    content_type, make, duration = FORMATS[fmt]
    audio = make()
    rec = await api.uploaded(audio, call_id=f"call-{fmt}")
    assert rec["content_type"] == content_type
    assert rec["duration_seconds"] == pytest.approx(duration, abs=0.05)
    assert rec["size_bytes"] == len(audio)
    assert rec["sha256"] == hashlib.sha256(audio).hexdigest()

    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert await response.read() == audio


async def test_upload_answers_201_with_location_and_the_recording(api: Api) -> None:
    response = await api.upload(wav_tone(0.5), customer_id="cust-7", agent_id="agent-3",
                                phone_number="+358401234567", queue="billing",
                                direction="inbound", ended_at="2026-11-24T09:05:00Z")
    assert response.status == 201
    rec = await response.json()
    assert response.headers["Location"] == f"/v1/recordings/{rec['id']}"
    assert rec["id"].replace("_", "").replace("-", "").isalnum()
    assert rec["call_id"] == "call-1"
    assert rec["customer_id"] == "cust-7"
    assert rec["direction"] == "inbound"
    assert rec["state"] == "active"
    assert rec["key_version"] == 1
    assert rec["restriction"] is None and rec["legal_holds"] == []
    by_name = {p["purpose"]: p for p in rec["purposes"]}
    assert by_name["training"]["expires_at"] == "2027-05-24T09:00:00Z"
    assert by_name["legal_protection"]["expires_at"] == "2029-11-24T09:00:00Z"
    assert by_name["training"]["legal_basis"] == "consent"
    assert all(p["active"] for p in rec["purposes"])
    assert rec["purge_at"] == "2029-11-24T09:00:00Z"


async def test_put_upload_takes_metadata_from_the_query(api: Api) -> None:
    audio = wav_tone(0.5)
    response = await api.client.put(
        "/v1/calls/fs-uuid-42/recording", data=audio, headers=api.auth("ingest"),
        params=[("started_at", "2026-11-24T08:00:00Z"), ("purpose", "quality_review"),
                ("purpose", "security"), ("customer_id", "c-1"),
                ("sha256", hashlib.sha256(audio).hexdigest())])
    assert response.status == 201, await response.text()
    rec = await response.json()
    assert rec["call_id"] == "fs-uuid-42"
    assert sorted(p["purpose"] for p in rec["purposes"]) == ["quality_review", "security"]
    again = await api.client.put(
        "/v1/calls/fs-uuid-42/recording", data=audio, headers=api.auth("ingest"),
        params=[("started_at", "2026-11-24T08:00:00Z"), ("purpose", "quality_review")])
    assert again.status == 200
    assert (await again.json())["id"] == rec["id"]


async def test_put_upload_takes_metadata_from_a_header_to_keep_it_out_of_urls(
        api: Api) -> None:
    audio = wav_tone(0.5)
    meta = {"started_at": "2026-11-24T08:00:00Z", "purposes": ["training"],
            "customer_id": "c-77", "phone_number": "+358401234567"}
    response = await api.client.put(
        "/v1/calls/ast-1700000000.42/recording", data=audio,
        headers={**api.auth("ingest"), "Recording-Metadata": json.dumps(meta)})
    assert response.status == 201, await response.text()
    rec = await response.json()
    assert (rec["call_id"], rec["customer_id"], rec["phone_number"]) == (
        "ast-1700000000.42", "c-77", "+358401234567")
    both = await api.client.put(
        "/v1/calls/ast-2/recording", data=audio, params={"purpose": "training"},
        headers={**api.auth("ingest"), "Recording-Metadata": json.dumps(meta)})
    assert both.status == 400 and (await both.json())["reason"] == "invalid_metadata"
    for bad in ("not json", "[1]", json.dumps({**meta, "call_id": "other"})):
        refused = await api.client.put(
            "/v1/calls/ast-3/recording", data=audio,
            headers={**api.auth("ingest"), "Recording-Metadata": bad})
        assert refused.status == 400, bad
        assert (await refused.json())["reason"] == "invalid_metadata"
        assert bad not in await refused.text()


def basic(name: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


async def test_a_pbx_may_put_with_the_token_as_basic_credentials(api: Api) -> None:
    """curl-based PBX modules can only put credentials in the URL's user-info."""
    audio = wav_tone(0.5)
    meta = json.dumps({"started_at": "2026-11-24T08:00:00Z", "purposes": ["training"]})
    token = api.tokens["ingest"]
    ok = await api.client.put("/v1/calls/fs-9/recording", data=audio,
                              headers={**basic("ingest", token), "Recording-Metadata": meta})
    assert ok.status == 201, await ok.text()
    assert (await api.audit(action="upload"))[-1]["actor"] == "ingest"
    # The name must be the token's; a wrong or missing token is refused.
    for headers in (basic("supervisor", token), basic("ingest", "rst_wrong"), basic("ingest", ""),
                    {"Authorization": "Basic !!!"}):
        refused = await api.client.put("/v1/calls/fs-10/recording", data=audio,
                                       headers={**headers, "Recording-Metadata": meta})
        assert refused.status == 401, headers
        # The challenge names both schemes the route takes.
        challenge = refused.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'Basic realm="recordings"' in challenge
    # Basic is for that upload only: nowhere else, and a token in the query never counts.
    elsewhere = await api.client.get("/v1/recordings", headers=basic("ingest", token))
    assert elsewhere.status == 401
    assert "Basic" not in elsewhere.headers["WWW-Authenticate"]
    for name in ("token", "access_token", "bearer"):
        in_query = await api.client.put("/v1/calls/fs-11/recording", data=audio,
                                        params={name: token}, headers={"Recording-Metadata": meta})
        assert in_query.status == 401


async def test_same_call_id_same_audio_is_an_idempotent_retry(api: Api) -> None:
    audio = wav_tone(0.5)
    first = await api.uploaded(audio)
    retry = await api.upload(audio)
    assert retry.status == 200
    assert (await retry.json())["id"] == first["id"]
    assert await recording_count(api.services) == 1
    assert len(await stored_blobs(api.services)) == 1


async def test_same_call_id_different_audio_conflicts(api: Api) -> None:
    await api.uploaded(wav_tone(0.5))
    response = await api.upload(wav_tone(0.5, frequency=880))
    assert response.status == 409
    problem = await response.json()
    assert problem["reason"] == "duplicate_call_id"
    assert len(await stored_blobs(api.services)) == 1


async def test_concurrent_uploads_of_one_call_store_it_once(api: Api) -> None:
    audio = wav_noise(400_000)
    responses = await asyncio.gather(*(api.upload(audio) for _ in range(4)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 1 and statuses.count(200) == 3
    assert len({(await r.json())["id"] for r in responses}) == 1
    assert await recording_count(api.services) == 1
    assert len(await stored_blobs(api.services)) == 1


async def test_checksum_is_verified(api: Api) -> None:
    audio = wav_tone(0.5)
    ok = await api.upload(audio, sha256=hashlib.sha256(audio).hexdigest().upper())
    assert ok.status == 201
    bad = await api.upload(audio, call_id="call-2", sha256="0" * 64)
    assert bad.status == 422
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert (await bad.json())["reason"] == "checksum_mismatch"
    assert await recording_count(api.services) == 1
    assert len(await stored_blobs(api.services)) == 1
    assert await incomplete(api.services) == 0


@pytest.mark.parametrize("body", [b"just some text, not audio" * 10, os.urandom(5000),
                                  b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(100), b"",
                                  b"OggS" + bytes(60) + b"Speex"])
async def test_non_audio_is_refused_as_unsupported_media(api: Api, body: bytes) -> None:
    response = await api.upload(body)
    assert response.status == 415
    assert (await response.json())["reason"] == "unsupported_media_type"
    assert await recording_count(api.services) == 0
    assert await stored_blobs(api.services) == [] and await incomplete(api.services) == 0


async def test_content_type_is_detected_not_believed(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("metadata", json.dumps({"call_id": "c", "started_at": "2026-11-24T09:00:00Z",
                                           "purposes": ["training"]}))
    form.add_field("audio", FORMATS["flac"][1](), content_type="audio/wav", filename="x.wav")
    response = await api.client.post("/v1/recordings", data=form, headers=api.auth("ingest"))
    assert (await response.json())["content_type"] == "audio/flac"


async def test_too_large_is_refused_and_leaves_nothing(api: Api) -> None:
    api.services.config = api.services.config.with_overrides(max_upload_bytes=100_000)
    response = await api.upload(wav_noise(150_000))
    assert response.status == 413
    assert (await response.json())["reason"] == "too_large"
    small = await api.upload(wav_noise(50_000), call_id="call-small")
    assert small.status == 201
    assert await recording_count(api.services) == 1
    assert len(await stored_blobs(api.services)) == 1 and await incomplete(api.services) == 0


@pytest.mark.parametrize(("metadata", "reason"), [
    ({"call_id": None}, "invalid_metadata"),
    ({"started_at": "yesterday"}, "invalid_metadata"),
    ({"started_at": "2026-11-24T09:00:00"}, "invalid_metadata"),
    ({"purposes": []}, "invalid_metadata"),
    ({"purposes": ["marketing"]}, "unknown_purpose"),
    ({"direction": "sideways"}, "invalid_metadata"),
    ({"sha256": "xyz"}, "invalid_metadata"),
    ({"ended_at": "2026-11-24T08:00:00Z"}, "invalid_metadata"),
    ({"colour": "blue"}, "invalid_metadata"),
])
async def test_bad_metadata_is_a_400_with_a_reason(api: Api, metadata: dict[str, object],
                                                   reason: str) -> None:
    response = await api.upload(wav_tone(0.2), **metadata)
    assert response.status == 400
    problem = await response.json()
    assert problem["reason"] == reason
    assert set(problem) >= {"type", "title", "status", "detail", "reason"}
    assert await recording_count(api.services) == 0


async def test_parts_in_the_wrong_order_are_refused(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("audio", wav_tone(0.2), filename="a.wav")
    form.add_field("metadata", "{}")
    response = await api.client.post("/v1/recordings", data=form, headers=api.auth("ingest"))
    assert response.status == 400
    assert (await response.json())["reason"] == "invalid_multipart"


async def test_upload_needs_the_ingest_role(api: Api) -> None:
    anonymous = await api.client.post("/v1/recordings", data=b"x")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await api.upload(wav_tone(0.2), token="supervisor")
    assert wrong.status == 403
    assert (await wrong.json())["reason"] == "missing_role"
    denied = await api.audit(action="upload")
    assert denied[-1]["outcome"] == "denied" and denied[-1]["actor"] == "supervisor"


async def test_upload_is_audited(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.2))
    entries = await api.audit(action="upload", recording_id=rec["id"])
    assert len(entries) == 1
    assert entries[0]["actor"] == "ingest" and entries[0]["outcome"] == "allowed"


async def test_no_plaintext_run_is_on_disk(api: Api) -> None:
    audio = wav_noise(300_000, seed=7)
    rec = await api.uploaded(audio, customer_id="cust-1")
    assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    files = files_under(api.services.config.data_dir)
    assert files
    for path in files:
        assert not contains_plaintext_run(path.read_bytes(), audio), path.name


async def test_interrupted_upload_leaves_nothing(api: Api) -> None:
    meta = json.dumps({"call_id": "cut", "started_at": "2026-11-24T09:00:00Z",
                       "purposes": ["training"]}).encode()
    audio = wav_noise(2_000_000)
    boundary = "xyzzy"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + meta + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; "
            f"filename=\"a.wav\"\r\n\r\n").encode()
    total = len(head) + len(audio) + len(f"\r\n--{boundary}--\r\n")
    _, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write((f"POST /v1/recordings HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {api.tokens['ingest']}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {total}\r\n\r\n").encode() + head + audio[:1_500_000])
    await writer.drain()
    for _ in range(100):  # wait until the server has written part of it (past 1 MiB)
        if await incomplete(api.services):
            break
        await asyncio.sleep(0.02)
    assert await incomplete(api.services), "the upload never started"
    writer.close()
    for _ in range(200):
        if not await incomplete(api.services):
            break
        await asyncio.sleep(0.02)
    assert await incomplete(api.services) == 0
    assert await stored_blobs(api.services) == []
    assert await recording_count(api.services) == 0
    search = await api.client.get("/v1/recordings", params={"call_id": "cut"},
                                  headers=api.auth("compliance"))
    assert (await search.json())["items"] == []
