"""Streaming: byte ranges, purpose-bound access, integrity failures never served."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from storage import streaming_aead
from storage.schema import recordings
from tests.audio import wav_noise
from tests.conftest import Api
from tests.integration.helpers import blob_bytes, replace_blob

SEG = streaming_aead.DEFAULT_PARAMS
FIRST = SEG.first_plaintext_size  # plaintext bytes in segment 0
ALL_PURPOSES = ["service_verification", "legal_protection", "training", "quality_review",
                "fraud_prevention", "security", "accounting_record"]


@pytest.fixture
async def big(api: Api) -> tuple[str, bytes]:
    audio = wav_noise(400_000, seed=3)
    rec = await api.uploaded(audio, call_id="big")
    return rec["id"], audio


def _range_cases(size: int) -> list[tuple[str, int, int]]:
    boundary = FIRST + SEG.plaintext_segment_size
    return [
        ("bytes=0-0", 0, 0),                                   # first byte
        (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),  # last byte
        ("bytes=-1", size - 1, size - 1),                      # suffix of one
        ("bytes=-5000", size - 5000, size - 1),                # suffix
        ("bytes=300000-", 300_000, size - 1),                  # open-ended
        (f"bytes={FIRST - 10}-{FIRST + 10}", FIRST - 10, FIRST + 10),  # across 0|1
        (f"bytes={boundary - 1}-{boundary}", boundary - 1, boundary),  # across 1|2
        (f"bytes=100-{FIRST + 3 * SEG.segment_size}", 100, FIRST + 3 * SEG.segment_size),
        (f"bytes=1000-{size + 5000}", 1000, size - 1),         # end past the size
        (f"bytes=-{size + 10}", 0, size - 1),                  # suffix longer than size
    ]


async def test_single_ranges_answer_206_with_exactly_those_bytes(
        api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    size = len(audio)
    for header, start, end in _range_cases(size):
        response = await api.audio(rid, "training", "supervisor", {"Range": header})
        assert response.status == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        body = await response.read()
        assert body == audio[start : end + 1], header
        assert int(response.headers["Content-Length"]) == end - start + 1


@pytest.mark.parametrize("header", ["bytes=400000-", "bytes=999999-1000000", "bytes=-0"])
async def test_unsatisfiable_range_is_416_with_the_size(
        api: Api, big: tuple[str, bytes], header: str) -> None:
    rid, audio = big
    response = await api.audio(rid, "training", "supervisor", {"Range": header})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(audio)}"
    assert (await response.json())["reason"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-1", "items=0-10", "bytes=0-1,5-9",
                                    "bytes=", "bytes=--3", "bytes 0-1"])
async def test_malformed_or_multiple_ranges_get_the_whole_body(
        api: Api, big: tuple[str, bytes], header: str) -> None:
    rid, audio = big
    response = await api.audio(rid, "training", "supervisor", {"Range": header})
    assert response.status == 200
    assert await response.read() == audio


async def test_full_response_headers(api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    response = await api.audio(rid, "training", "supervisor")
    assert response.status == 200
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "audio/wav"
    meta = await (await api.client.get(f"/v1/recordings/{rid}",
                                       headers=api.auth("supervisor"))).json()
    assert response.headers["ETag"] == f'"{meta["sha256"]}"'
    assert int(response.headers["Content-Length"]) == len(audio)


async def test_if_range_with_a_stale_etag_sends_everything(
        api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    fresh = (await api.audio(rid, "training", "supervisor")).headers["ETag"]
    matching = await api.audio(rid, "training", "supervisor",
                               {"Range": "bytes=0-9", "If-Range": fresh})
    assert matching.status == 206 and await matching.read() == audio[:10]
    stale = await api.audio(rid, "training", "supervisor",
                            {"Range": "bytes=0-9", "If-Range": '"0000"'})
    assert stale.status == 200 and await stale.read() == audio


async def test_head_gives_the_headers_and_no_body(api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    response = await api.audio(rid, "training", "supervisor", {"Range": "bytes=10-19"},
                               method="HEAD")
    assert response.status == 206
    assert response.headers["Content-Length"] == "10"
    assert await response.read() == b""
    entries = await api.audit(action="stream", recording_id=rid)
    assert entries[-1]["detail"]["method"] == "HEAD"


async def test_purpose_may_come_from_the_query(api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    response = await api.client.get(f"/v1/recordings/{rid}/audio",
                                    params={"purpose": "training"},
                                    headers=api.auth("supervisor"))
    assert response.status == 200 and await response.read() == audio


# --- authorization ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["ingest", "supervisor", "compliance", "auditor"])
async def test_every_role_and_purpose_combination(api: Api, role: str) -> None:
    rec = await api.uploaded(wav_noise(2000), purposes=ALL_PURPOSES)
    purposes = api.services.config.purposes
    for purpose in ALL_PURPOSES:
        response = await api.audio(rec["id"], purpose, role)
        if role in ("ingest", "auditor"):
            assert response.status == 403, (role, purpose)
            assert (await response.json())["reason"] == "missing_role"
        elif role in purposes[purpose].access_roles:
            assert response.status == 200, (role, purpose)
        else:
            assert response.status == 403, (role, purpose)
            assert (await response.json())["reason"] == "purpose_not_allowed"


async def test_purpose_must_be_named_and_known(api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    missing = await api.audio(rid, None, "supervisor")
    assert missing.status == 400 and (await missing.json())["reason"] == "purpose_required"
    unknown = await api.audio(rid, "marketing", "supervisor")
    assert unknown.status == 400 and (await unknown.json())["reason"] == "unknown_purpose"


async def test_a_purpose_the_recording_is_not_kept_for_is_refused(api: Api) -> None:
    rec = await api.uploaded(wav_noise(2000), purposes=["legal_protection"])
    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 403
    assert (await response.json())["reason"] == "purpose_not_allowed"


async def test_an_expired_purpose_no_longer_opens_the_audio(api: Api) -> None:
    rec = await api.uploaded(wav_noise(2000), purposes=["training", "legal_protection"])
    api.clock.advance(days=200)  # training (6 months) has lapsed, legal_protection has not
    training = await api.audio(rec["id"], "training", "supervisor")
    assert training.status == 403
    problem = await training.json()
    assert problem["reason"] == "purpose_expired"
    assert "2027-05-24T09:00:00Z" in problem["detail"]
    legal = await api.audio(rec["id"], "legal_protection", "compliance")
    assert legal.status == 200


async def test_restricted_recording_is_heard_only_for_legal_protection(api: Api) -> None:
    rec = await api.uploaded(wav_noise(2000),
                             purposes=["training", "legal_protection", "security"])
    async with api.services.database.write() as conn:
        await conn.execute(recordings.update().where(recordings.c.id == rec["id"]).values(
            restriction_reason="dispute", restriction_placed_at=api.clock()))
    for purpose, role in (("training", "supervisor"), ("security", "compliance")):
        response = await api.audio(rec["id"], purpose, role)
        assert response.status == 403
        assert (await response.json())["reason"] == "restricted"
    assert (await api.audio(rec["id"], "legal_protection", "compliance")).status == 200


async def test_unknown_recording_is_404_and_purged_is_410(api: Api) -> None:
    assert (await api.audio("rec_nope", "training", "supervisor")).status == 404
    rec = await api.uploaded(wav_noise(2000))
    async with api.services.database.write() as conn:
        await conn.execute(recordings.update().where(recordings.c.id == rec["id"]).values(
            state="purged", wrapped_dek=None))
    gone = await api.audio(rec["id"], "training", "supervisor")
    assert gone.status == 410 and (await gone.json())["reason"] == "purged"


# --- audit of accesses -----------------------------------------------------------------


async def test_allowed_and_denied_accesses_are_audited(api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    await api.audio(rid, "training", "supervisor",
                    {"Range": "bytes=0-99", "X-Request-Id": "req-allowed"})
    await api.audio(rid, "legal_protection", "supervisor", {"X-Request-Id": "req-denied"})
    entries = await api.audit(action="stream", recording_id=rid)
    allowed, denied = entries[-2], entries[-1]
    assert allowed["outcome"] == "allowed"
    assert allowed["actor"] == "supervisor" and allowed["roles"] == ["supervisor"]
    assert allowed["purpose"] == "training"
    assert allowed["request_id"] == "req-allowed"
    assert allowed["client_ip"] == "127.0.0.1"
    assert allowed["detail"]["range"] == "bytes=0-99"
    assert denied["outcome"] == "denied"
    assert denied["reason"] == "purpose_not_allowed"
    assert denied["request_id"] == "req-denied"


async def test_the_access_is_committed_before_the_first_byte(
        api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    before = len(await api.audit(action="stream"))
    async with api.client.get(f"/v1/recordings/{rid}/audio",
                              headers={**api.auth("supervisor"), "Access-Purpose": "training"},
                              ) as response:
        assert response.status == 200
        # Headers are here, the body not yet read: the entry must already be durable,
        # visible to a separate reader connection.
        entries = await api.audit(action="stream")
        assert len(entries) == before + 1
        await response.read()


# --- integrity -------------------------------------------------------------------------


async def test_a_flipped_bit_is_a_500_and_no_audio(api: Api) -> None:
    rec = await api.uploaded(wav_noise(10_000))
    data = bytearray(await blob_bytes(api.services, rec["id"]))
    data[100] ^= 0x01
    await replace_blob(api.services, rec["id"], bytes(data))
    response = await api.audio(rec["id"], "training", "supervisor")
    assert response.status == 500
    assert (await response.json())["reason"] == "integrity_failure"


async def test_a_truncated_blob_is_a_500(api: Api) -> None:
    rec = await api.uploaded(wav_noise(200_000))
    data = await blob_bytes(api.services, rec["id"])
    await replace_blob(api.services, rec["id"], data[: SEG.segment_size * 2])
    response = await api.audio(rec["id"], "training", "supervisor", {"Range": "bytes=0-10"})
    assert response.status == 500
    assert (await response.json())["reason"] == "integrity_failure"


async def test_swapped_blobs_fail(api: Api) -> None:
    a = await api.uploaded(wav_noise(50_000, seed=1), call_id="a")
    b = await api.uploaded(wav_noise(50_000, seed=2), call_id="b")
    data_a, data_b = (await blob_bytes(api.services, a["id"]),
                      await blob_bytes(api.services, b["id"]))
    await replace_blob(api.services, a["id"], data_b)
    await replace_blob(api.services, b["id"], data_a)
    for rid in (a["id"], b["id"]):
        response = await api.audio(rid, "training", "supervisor")
        assert response.status == 500


async def test_corruption_late_in_the_file_cuts_the_stream_short(api: Api) -> None:
    audio = wav_noise(1_000_000, seed=5)
    rec = await api.uploaded(audio)
    data = bytearray(await blob_bytes(api.services, rec["id"]))
    bad_segment = 9
    data[SEG.segment_size * bad_segment + 50] ^= 0x80
    await replace_blob(api.services, rec["id"], bytes(data))
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with api.client.get(f"/v1/recordings/{rec['id']}/audio",
                                  headers={**api.auth("supervisor"),
                                           "Access-Purpose": "training"}) as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(65536):
                received += chunk
    assert len(received) < len(audio)
    # Nothing from the tampered segment onward reached the client.
    assert len(received) <= SEG.plaintext_start(bad_segment)
    assert audio.startswith(received)


# --- playback links --------------------------------------------------------------------


async def _link(api: Api, rid: str, purpose: str = "training", role: str = "supervisor",
                ) -> aiohttp.ClientResponse:
    return await api.client.post(f"/v1/recordings/{rid}/playback-links",
                                 json={"purpose": purpose}, headers=api.auth(role))


async def test_playback_link_plays_without_a_token_and_supports_range(
        api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    response = await _link(api, rid)
    assert response.status == 201
    link = await response.json()
    assert link["url"].startswith("/v1/playback/")
    assert link["expires_at"] == "2026-11-24T09:25:00Z"
    full = await api.client.get(link["url"])
    assert full.status == 200 and await full.read() == audio
    part = await api.client.get(link["url"], headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == audio[100:200]
    made = await api.audit(action="playback_link", recording_id=rid)
    assert made[-1]["outcome"] == "allowed" and made[-1]["purpose"] == "training"
    streams = await api.audit(action="stream", recording_id=rid)
    assert streams[-1]["detail"]["via"] == "playback_link"
    assert streams[-1]["actor"] == "supervisor"


async def test_playback_link_is_authorized_like_the_audio(api: Api,
                                                          big: tuple[str, bytes]) -> None:
    rid, _ = big
    denied = await _link(api, rid, purpose="legal_protection", role="supervisor")
    assert denied.status == 403
    assert (await denied.json())["reason"] == "purpose_not_allowed"


async def test_playback_link_expires(api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    url = (await (await _link(api, rid)).json())["url"]
    api.clock.advance(minutes=11)
    response = await api.client.get(url)
    assert response.status == 403
    assert (await response.json())["reason"] == "link_expired"


async def test_playback_link_dies_with_restriction_and_revocation(
        api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    url = (await (await _link(api, rid)).json())["url"]
    async with api.services.database.write() as conn:
        await conn.execute(recordings.update().where(recordings.c.id == rid).values(
            restriction_reason="dispute", restriction_placed_at=api.clock()))
    restricted = await api.client.get(url)
    assert restricted.status == 403 and (await restricted.json())["reason"] == "restricted"
    async with api.services.database.write() as conn:
        await conn.execute(recordings.update().where(recordings.c.id == rid).values(
            restriction_reason=None, restriction_placed_at=None))
    assert (await api.client.get(url)).status == 200
    from storage import catalog
    async with api.services.database.write() as conn:
        await catalog.revoke_token(conn, "supervisor", api.clock())
    revoked = await api.client.get(url)
    assert revoked.status == 403 and (await revoked.json())["reason"] == "link_revoked"


async def test_forged_playback_links_are_not_found(api: Api, big: tuple[str, bytes]) -> None:
    rid, _ = big
    url = (await (await _link(api, rid)).json())["url"]
    payload, signature = url.rsplit("/", 1)[1].split(".")
    forged = f"/v1/playback/{payload}.{signature[:-2]}AA"
    assert (await api.client.get(forged)).status == 404
    assert (await api.client.get("/v1/playback/garbage")).status == 404


async def test_streams_run_concurrently(api: Api, big: tuple[str, bytes]) -> None:
    rid, audio = big
    responses = await asyncio.gather(*(api.audio(rid, "training", "supervisor")
                                       for _ in range(8)))
    bodies = await asyncio.gather(*(r.read() for r in responses))
    assert all(b == audio for b in bodies)


async def test_reordered_segments_fail(api: Api) -> None:
    rec = await api.uploaded(wav_noise(300_000))
    data = await blob_bytes(api.services, rec["id"])
    seg = SEG.segment_size
    await replace_blob(api.services, rec["id"], data[:seg] + data[2 * seg : 3 * seg]
                       + data[seg : 2 * seg] + data[3 * seg :])
    response = await api.audio(rec["id"], "training", "supervisor",
                               {"Range": f"bytes={FIRST}-{FIRST + 10}"})
    assert response.status == 500
    assert (await response.json())["reason"] == "integrity_failure"
