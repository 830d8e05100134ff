"""Key rotation: new version, data keys re-wrapped in batches, old version retired."""

from __future__ import annotations

import json

import pytest

from recordings_service import keys
from storage.errors import KeyringError
from storage.schema import recordings
from tests.audio import wav_tone
from tests.conftest import Api


async def test_rotate_rewrap_retire(api: Api) -> None:
    svc = api.services
    svc.config = svc.config.with_overrides(rewrap_batch=2)
    old = [await api.uploaded(wav_tone(0.1, frequency=200 + i), call_id=f"old-{i}")
           for i in range(5)]
    assert {r["key_version"] for r in old} == {1}

    assert await keys.rotate(svc) == 2
    new = await api.uploaded(wav_tone(0.1, frequency=900), call_id="new")
    assert new["key_version"] == 2

    status = await keys.status(svc)
    assert status["current_version"] == 2
    assert {v["version"]: v["data_keys"] for v in status["versions"]} == {1: 5, 2: 1}

    async with svc.database.read() as conn:
        stale_copy = (await conn.execute(recordings.select().where(
            recordings.c.id == old[0]["id"]))).one()

    result = await keys.rewrap(svc)
    assert result.rewrapped == 5
    assert result.retired == []  # superseded too recently to retire
    for rec in old:
        response = await api.audio(rec["id"], "training", "supervisor")
        assert response.status == 200
    meta = await (await api.client.get(f"/v1/recordings/{old[0]['id']}",
                                       headers=api.auth("compliance"))).json()
    assert meta["key_version"] == 2

    api.clock.advance(hours=2)
    result = await keys.rewrap(svc)
    assert result.rewrapped == 0 and result.retired == [1]
    keyring_file = json.loads((svc.config.data_dir / "keyring.json").read_text())
    retired = next(v for v in keyring_file["versions"] if v["version"] == 1)
    assert retired["key"] is None and retired["retired_at"]
    # A copy of a data key wrapped under the retired version (e.g. in a backup) is dead.
    with pytest.raises(KeyringError):
        svc.keyring.unwrap(stale_copy.wrapped_dek, 1, stale_copy.id)

    actions = [e["action"] for e in await api.audit()]
    assert "key_rotation" in actions and "key_rewrap" in actions


async def test_a_wrapped_key_is_bound_to_its_recording(api: Api) -> None:
    a = await api.uploaded(wav_tone(0.1), call_id="a")
    b = await api.uploaded(wav_tone(0.1, frequency=500), call_id="b")
    async with api.services.database.write() as conn:
        wrapped_a = (await conn.execute(recordings.select().where(
            recordings.c.id == a["id"]))).one().wrapped_dek
        await conn.execute(recordings.update().where(recordings.c.id == b["id"]).values(
            wrapped_dek=wrapped_a))
    response = await api.audio(b["id"], "training", "supervisor")
    assert response.status == 500
    assert (await response.json())["reason"] == "key_unavailable"
