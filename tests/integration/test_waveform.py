"""A call's waveform through HTTP: for a purpose the caller may listen for, audited as an
access, sealed at rest, and gone with the recording."""

from __future__ import annotations

import struct
from typing import Any

from sqlalchemy import delete, select, update

from recordings_service import waveform_backfill
from recordings_service.auth import Actor
from storage.schema import recording_waveforms, recordings
from tests.audio import fixture, riff_wav
from tests.conftest import Api
from tests.integration.helpers import run_cli


def quiet_then_loud() -> bytes:
    samples = [0] * 8000 + [24000, -24000] * 4000  # one quiet second, one loud
    return riff_wav(struct.pack(f"<{len(samples)}h", *samples))


async def _waveform(api: Api, rid: str, purpose: str | None, role: str = "supervisor",
                    **params: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = api.auth(role) | ({"Access-Purpose": purpose} if purpose else {})
    response = await api.client.get(f"/v1/recordings/{rid}/waveform", params=params,
                                    headers=headers)
    return response.status, await response.json()


async def test_the_waveform_shows_the_call_to_those_who_may_hear_it(api: Api) -> None:
    rec = await api.uploaded(quiet_then_loud(), call_id="wave-1", customer_id="C-w",
                             purposes=["training", "legal_protection"])
    status, body = await _waveform(api, rec["id"], "training")
    assert status == 200
    loud = 24000 * 255 // 32767  # to 1/128 of full scale: the samples' top bytes
    assert body["levels"][:10] == [0] * 10
    assert len(body["levels"]) == 20 and all(abs(v - loud) <= 2 for v in body["levels"][10:])
    shape = bytes(body["levels"])
    assert body["seconds_per_level"] == 0.1 and body["duration_seconds"] == 2.0
    status, body = await _waveform(api, rec["id"], "training", points="10")
    assert (status, len(body["levels"]), body["seconds_per_level"]) == (200, 10, 0.2)
    waved = await api.audit(recording_id=rec["id"], action="waveform")
    assert [(e["actor"], e["purpose"], e["outcome"]) for e in waved] == [
        ("supervisor", "training", "allowed")] * 2

    # The policy's answer, as for the audio: a supervisor may not for legal protection.
    status, problem = await _waveform(api, rec["id"], "legal_protection")
    assert status == 403
    status, problem = await _waveform(api, rec["id"], None)
    assert (status, problem["reason"]) == (400, "purpose_required")
    for points in ("5", "5001", "9" * 5000, "1e3", "\u0663\u0660"):
        status, problem = await _waveform(api, rec["id"], "training", points=points)
        assert (status, problem["reason"]) == (400, "invalid_query"), points

    # At rest, sealed: the levels are not in the row.
    async with api.services.database.read() as conn:
        sealed = (await conn.execute(select(recording_waveforms.c.sealed))).scalar_one()
    assert shape[10:] not in sealed

    # Erased with the recording.
    status, _ = await api.call("POST", "/v1/subjects/C-w/erasure", {"reason": "asked"})
    assert status == 200
    async with api.services.database.read() as conn:
        assert (await conn.execute(select(recording_waveforms))).all() == []
    status, problem = await _waveform(api, rec["id"], "training")
    assert (status, problem["reason"]) == (410, "purged")


async def test_a_format_not_decoded_has_no_waveform(api: Api) -> None:
    rec = await api.uploaded(fixture("tone.mp3"), call_id="wave-mp3")
    status, problem = await _waveform(api, rec["id"], "training")
    assert (status, problem["reason"]) == (404, "not_found")


async def test_recordings_from_before_waveforms_get_theirs_from_the_backfill(
        api: Api, tmp_path: Any) -> None:
    rec = await api.uploaded(quiet_then_loud(), call_id="wave-old")
    mp3 = await api.uploaded(fixture("tone.mp3"), call_id="wave-old-mp3")
    _, drawn = await _waveform(api, rec["id"], "training")
    assert rec["audio_check"] == "ok"
    async with api.services.database.write() as conn:  # as uploaded before this version
        await conn.execute(delete(recording_waveforms))
        await conn.execute(update(recordings).values(audio_check=None))
    status, _ = await _waveform(api, rec["id"], "training")
    assert status == 404

    made = await waveform_backfill.backfill(api.services, Actor("system:cli", frozenset()))
    assert made == 1  # the MP3 has none to make
    status, again = await _waveform(api, rec["id"], "training")
    assert status == 200 and again["levels"] == drawn["levels"]
    _, measured = await api.call("GET", f"/v1/recordings/{rec['id']}")
    assert measured["audio_check"] == "ok"  # the silence check, measured with it
    built = await api.audit(action="waveforms_built")
    assert [e["detail"]["recording_ids"] for e in built] == [[rec["id"]]]
    assert await waveform_backfill.backfill(api.services, Actor("x", frozenset())) == 0
    assert mp3["id"] not in built[0]["detail"]["recording_ids"]
    # The command an operator runs.
    done = run_cli(tmp_path / "fresh", "waveforms", "backfill")
    assert done.returncode == 0 and '"waveforms": 0' in done.stdout
