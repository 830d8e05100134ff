"""The training library: clips of calls in collections, played as WAVs of their span only,
for training, checked at every play; shared with agents, who play those clips and nothing
more of the call; gone with the call at erasure."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings_service import clip_audio
from tests.audio import fixture, riff_wav, wav_tone
from tests.conftest import Api


async def _collection(api: Api, name: str = "Good openings") -> str:
    status, made = await api.call("POST", "/v1/collections", {"name": name},
                                  role="supervisor")
    assert status == 201, made
    return str(made["id"])


async def _clip(api: Api, cid: str, rid: str, start: float, end: float,
                role: str = "supervisor") -> tuple[int, Any]:
    return await api.call("POST", f"/v1/collections/{cid}/clips",
                          {"recording_id": rid, "start_seconds": start, "end_seconds": end,
                           "note": "listen to the greeting"}, role=role)


async def _play(api: Api, url: str, role: str, headers: dict[str, str] | None = None,
                ) -> Any:
    return await api.client.get(url, headers={**api.auth(role), **(headers or {})})


def _frames(wav_bytes: bytes) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        return w.getnframes(), w.readframes(w.getnframes())


async def test_a_clip_plays_as_a_wav_of_its_span_and_nothing_beyond(api: Api) -> None:
    audio = wav_tone(4, frequency=300)
    rec = await api.uploaded(audio, call_id="t-1", agent_id="A-3", purposes=["training"])
    cid = await _collection(api)
    status, clip = await _clip(api, cid, rec["id"], 1.0, 2.5)
    assert status == 201 and clip["playable"] is True
    whole = await _play(api, clip["audio_url"], "supervisor")
    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/wav"
    body = await whole.read()
    frames, pcm = _frames(body)
    # 8 kHz 16-bit mono: exactly 1.5 s, the very samples of the call from 1.0 s.
    assert frames == 12000 and pcm == audio[44 + 16000:44 + 16000 + 24000]
    # Ranges reach within the clip only.
    part = await _play(api, clip["audio_url"], "supervisor", {"Range": "bytes=0-99"})
    assert part.status == 206 and await part.read() == body[:100]
    past = await _play(api, clip["audio_url"], "supervisor",
                       {"Range": f"bytes={len(body)}-"})
    assert past.status == 416
    entries = await api.audit(recording_id=rec["id"], action="clip_play")
    assert entries and all(e["purpose"] == "training" for e in entries)
    assert entries[0]["detail"]["span"] == [1.0, 2.5]


async def test_clips_are_checked_and_say_why_they_do_not_play(api: Api) -> None:
    rec = await api.uploaded(wav_tone(3), call_id="t-why", purposes=["training",
                                                                       "legal_protection"])
    cid = await _collection(api)
    _, clip = await _clip(api, cid, rec["id"], 0, 1)
    # Consent withdrawn: at the next read and the next play, never from a cache.
    status, _ = await api.call("DELETE", f"/v1/recordings/{rec['id']}/purposes/training",
                               {"reason": "the customer withdrew consent"})
    assert status == 200
    _, col = await api.call("GET", f"/v1/collections/{cid}", role="supervisor")
    [shown] = col["clips"]
    assert (shown["playable"], shown["reason"]) == (False, "purpose_withdrawn")
    refused = await _play(api, clip["audio_url"], "supervisor")
    assert (refused.status, (await refused.json())["reason"]) == (403, "purpose_withdrawn")

    api.clock.advance(seconds=1)  # clips are listed in the order they were added
    later = await api.uploaded(wav_tone(3, frequency=500), call_id="t-expire",
                               purposes=["training", "legal_protection"])
    _, clip2 = await _clip(api, cid, later["id"], 0, 1)
    status, _ = await api.call("PUT", f"/v1/recordings/{later['id']}/restriction",
                               {"reason": "dispute"})
    assert status == 200
    _, col = await api.call("GET", f"/v1/collections/{cid}", role="supervisor")
    assert [(c["id"], c["reason"]) for c in col["clips"]][1] == (clip2["id"], "restricted")
    await api.call("DELETE", f"/v1/recordings/{later['id']}/restriction", {"reason": "ok"})
    api.clock.advance(days=200)  # training kept 6 months
    _, col = await api.call("GET", f"/v1/collections/{cid}", role="supervisor")
    assert col["clips"][1]["reason"] == "purpose_expired"


async def test_an_agent_plays_the_clips_shared_with_them_and_no_more(api: Api) -> None:
    rec = await api.uploaded(wav_tone(3), call_id="t-share", agent_id="A-9",
                             purposes=["training"])
    cid = await _collection(api)
    _, clip = await _clip(api, cid, rec["id"], 0.5, 1.5)
    # Not shared yet: the collection does not exist for the agent.
    assert (await _play(api, clip["audio_url"], "agent")).status == 404
    status, _ = await api.call("GET", f"/v1/collections/{cid}", role="agent")
    assert status == 404
    status, shared = await api.call("PUT", f"/v1/collections/{cid}/shares/A-7",
                                    role="supervisor")
    assert status == 200 and shared["changed"] is True
    _, listed = await api.call("GET", "/v1/collections", role="agent")
    assert [c["id"] for c in listed["items"]] == [cid]
    status, col = await api.call("GET", f"/v1/collections/{cid}", role="agent")
    assert status == 200 and col["shared_with"] == [] and col["clips"][0]["playable"]
    played = await _play(api, clip["audio_url"], "agent")
    assert played.status == 200 and _frames(await played.read())[0] == 8000
    # The rest of the call is not the agent's to hear (another agent's call).
    refused = await api.audio(rec["id"], "training", "agent")
    assert (refused.status, (await refused.json())["reason"]) == (403, "not_your_call")
    # An agent changes nothing in the library.
    status, _ = await _clip(api, cid, rec["id"], 0, 2, role="agent")
    assert status == 403
    status, _ = await api.call("DELETE", f"/v1/collections/{cid}/shares/A-7",
                               role="supervisor")
    assert status == 200
    assert (await _play(api, clip["audio_url"], "agent")).status == 404


async def test_clips_are_cut_from_wav_within_the_call(api: Api) -> None:
    cid = await _collection(api)
    mp3 = await api.uploaded(fixture("tone.mp3"), call_id="t-mp3", purposes=["training"])
    status, problem = await _clip(api, cid, mp3["id"], 0, 1)
    assert (status, problem["reason"]) == (422, "clip_unsupported_format")
    rec = await api.uploaded(wav_tone(2), call_id="t-bounds", purposes=["training"])
    for start, end in ((1, 1), (1.5, 0.5), (0, 2.5), (-1, 1), ("0", 1), (True, 1)):
        status, problem = await _clip(api, cid, rec["id"], start, end)  # type: ignore[arg-type]
        assert (status, problem["reason"]) == (400, "invalid_clip"), (start, end)
    only_legal = await api.uploaded(wav_tone(2, frequency=600), call_id="t-legal",
                                    purposes=["legal_protection"])
    status, problem = await _clip(api, cid, only_legal["id"], 0, 1)
    assert (status, problem["reason"]) == (403, "purpose_not_allowed")


async def test_erasure_takes_the_clips_and_a_purge_leaves_them_saying_so(api: Api) -> None:
    erased = await api.uploaded(wav_tone(2), call_id="t-erase", customer_id="C-t",
                                purposes=["training"])
    purged = await api.uploaded(wav_tone(2, frequency=700), call_id="t-purge",
                                purposes=["training"])
    cid = await _collection(api)
    await _clip(api, cid, erased["id"], 0, 1)
    await _clip(api, cid, purged["id"], 0, 1)
    status, _ = await api.call("POST", "/v1/subjects/C-t/erasure", {"reason": "asked"})
    assert status == 200
    api.clock.advance(days=200)
    status, run = await api.call("POST", "/v1/purge-runs", {})
    assert status == 201, run
    _, col = await api.call("GET", f"/v1/collections/{cid}", role="supervisor")
    assert [(c["recording_id"], c["reason"], c["note"]) for c in col["clips"]] == [
        (purged["id"], "purged", None)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=10**6))
def test_any_header_is_cut_or_refused_as_unsupported(head: bytes, size: int) -> None:
    """A hostile or broken WAV header never gets past wav_layout as nonsense."""
    for data in (head, riff_wav(head), riff_wav(head, block_align=0),
                 riff_wav(head, data_size=0xFFFFFFFF)):
        try:
            layout = clip_audio.wav_layout(data, max(size, len(data)))
        except clip_audio.Unprocessable as refused:
            assert refused.reason == "clip_unsupported_format"
            continue
        assert layout.byte_rate > 0 and layout.block_align > 0
        assert layout.data_length % layout.block_align == 0 and layout.data_length >= 0
        cut = clip_audio.clip_file(layout, 0.5, 1.0)
        assert 0 <= cut.length <= layout.data_length


@pytest.mark.parametrize("channels,block", [(1, 1), (2, 4)])
def test_a_span_is_cut_at_whole_blocks(channels: int, block: int) -> None:
    data = riff_wav(bytes(16000), channels=channels, byte_rate=8000 * block,
                    block_align=block, bits=8 * block // channels)
    layout = clip_audio.wav_layout(data, len(data))
    cut = clip_audio.clip_file(layout, 0.3333, 0.6667)
    assert cut.length % block == 0 and (cut.first - layout.data_start) % block == 0
