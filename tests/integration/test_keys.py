"""Key rotation at both levels: a new key-encryption key version (data keys re-wrapped in
batches, the old version retired), and a new root key (the catalog's keys re-sealed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recordings_service import keys
from storage import key_store
from storage.errors import KeyringError
from storage.schema import recordings
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.helpers import new_service, run_cli


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
    async with svc.database.read() as conn:
        retired = next(r for r in await key_store.key_rows(conn) if r.version == 1)
    assert retired.sealed_key is None and retired.retired_at is not None
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


async def test_root_rotation_reseals_the_catalog_keys_and_destroys_the_old_root(
        api: Api) -> None:
    svc = api.services
    before = await api.uploaded(wav_tone(0.3), call_id="before")
    async with svc.database.read() as conn:
        wrapped_before = (await conn.execute(recordings.select().where(
            recordings.c.id == before["id"]))).one().wrapped_dek
        old_rows = await key_store.key_rows(conn)
    result = await keys.rotate_root(svc)
    assert result == {"root_generation": 2, "destroyed_generations": [1]}
    assert svc.keyring.root.generations() == [2]
    async with svc.database.read() as conn:
        rows = await key_store.key_rows(conn)
        secrets = await key_store.secret_rows(conn)
        wrapped_after = (await conn.execute(recordings.select().where(
            recordings.c.id == before["id"]))).one().wrapped_dek
    assert {r.root_generation for r in rows} == {2}
    assert {s.root_generation for s in secrets.values()} == {2}
    assert rows[0].sealed_key != old_rows[0].sealed_key
    assert wrapped_after == wrapped_before  # data keys are not touched
    assert (await api.audio(before["id"], "training", "supervisor")).status == 200
    # The status shows both levels.
    status = await keys.status(svc)
    assert status["root_key"]["generations"] == [2] and status["current_version"] == 1
    assert "root_key_rotation" in [e["action"] for e in await api.audit()]


def test_keys_rotate_root_from_the_command_line_keeps_the_recordings_readable(
        tmp_path: Path) -> None:
    data, config, _ = new_service(tmp_path, "", "auditor")
    before = (data / "root.key").read_bytes()
    rotated = run_cli(data, "keys", "rotate", "--root", "--config", str(config))
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["root_generation"] == 2
    assert "keys export" in rotated.stderr
    assert (data / "root.key").read_bytes() != before
    status = run_cli(data, "keys", "status", "--config", str(config))
    assert json.loads(status.stdout)["root_key"]["generations"] == [2]
