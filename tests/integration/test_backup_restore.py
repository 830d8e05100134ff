"""Backup and restore: a consistent online backup restores byte-exact with a verifying
audit log, and a restore never brings back a recording erased after the backup."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from recordings_service import backup, restore
from recordings_service.app import create_app
from recordings_service.appkeys import SERVICES
from recordings_service.config import Config
from recordings_service.errors import BackupError
from recordings_service.receipts import verify_receipt
from recordings_service.services import open_services
from storage import catalog, erasure_ledger
from storage.schema import recordings
from tests.audio import wav_tone
from tests.conftest import Api, FrozenClock
from tests.integration.helpers import (
    files_under,
    free_port,
    new_service,
    run_cli,
    service_env,
    start_serve,
    stored_blobs,
)


@pytest.fixture
def sqlite_only(config: Config) -> None:
    if config.database_url:
        pytest.skip("a PostgreSQL catalog is restored with pg_dump/PITR, not by restore")


def restored_config(config: Config, tmp_path: Path) -> Config:
    """The same installation restored elsewhere: same root key, a new data directory."""
    return config.with_overrides(data_dir=tmp_path / "restored",
                                 root_key_file=config.root_key_path)


async def test_restore_replays_erasures_made_after_the_backup(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path, sqlite_only: None,
        aiohttp_client: Any) -> None:
    audio = {f"c-{i}": wav_tone(0.3, frequency=300 + 50 * i) for i in range(6)}
    recs = {}
    for call, data in audio.items():
        purposes = ["training"] if call == "c-5" else ["training", "legal_protection"]
        customer = "C-erase" if call == "c-2" else f"C-{call}"
        recs[call] = await api.uploaded(data, call_id=call, customer_id=customer,
                                        purposes=purposes)
    dest = tmp_path / "backup"
    taken = await backup.backup(api.services, dest)
    assert taken.manifest["recordings"] == {"active": 6}
    assert taken.blobs == 6 and taken.manifest["blobs"]["count"] == 6

    # After the backup: an erasure, a subject's erasure and a retention purge.
    status, _ = await api.call("DELETE", f"/v1/recordings/{recs['c-1']['id']}",
                               {"reason": "customer asked"})
    assert status == 200
    status, _ = await api.call("POST", "/v1/subjects/C-erase/erasure",
                               {"reason": "subject request"})
    assert status == 200
    clock.advance(days=200)  # c-5's only purpose (training, 6 months) has lapsed
    status, run = await api.call("POST", "/v1/purge-runs", {})
    assert status == 201 and [p for p in run["purged"]] == [recs["c-5"]["id"]]
    gone = {recs[c]["id"] for c in ("c-1", "c-2", "c-5")}

    target = restored_config(config, tmp_path)
    report = await restore.restore(target, clock, dest, None,
                                   [config.erasure_ledger_path])
    assert report.audit_ok and report.warnings == []
    assert {r["recording_id"] for r in report.replayed} == gone

    client: TestClient = await aiohttp_client(create_app(target, clock))
    services = client.server.app[SERVICES]
    headers = api.auth("compliance") | {"Access-Purpose": "legal_protection"}
    for call, rec in recs.items():
        response = await client.get(f"/v1/recordings/{rec['id']}/audio", headers=headers)
        if rec["id"] in gone:
            assert response.status == 410
            meta = await client.get(f"/v1/recordings/{rec['id']}",
                                    headers=api.auth("compliance"))
            receipt = (await meta.json())["deletion_receipt"]
            assert verify_receipt(receipt, services.signing_key.public_key())
        else:
            assert response.status == 200, call
            assert await response.read() == audio[call]
    # No blob and no data key of the erased recordings is left in the restored copy.
    async with services.database.read() as conn:
        rows = {r.id: r for r in await conn.execute(recordings.select())}
    assert all(rows[i].wrapped_dek is None and rows[i].blob_name is None for i in gone)
    assert len(await stored_blobs(services)) == 3
    assert [e for e in erasure_ledger.read(target.erasure_ledger_path)
            if e["recording_id"] in gone]


@pytest.mark.parametrize("backed_up_after", [0, 1])
async def test_restore_redacts_again_what_was_redacted_after_the_backup(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path, sqlite_only: None,
        aiohttp_client: Any, backed_up_after: int) -> None:
    original = wav_tone(3.0)
    rec = await api.uploaded(original, call_id="c-card")
    dest = tmp_path / "backup"
    # The card number read out in the second second is redacted twice over (the second
    # redaction starts from the audio the first left); the backup is taken before both,
    # or between them.
    for n, span in enumerate(({"start_ms": 1000, "end_ms": 1500},
                              {"start_ms": 1400, "end_ms": 2000})):
        if n == backed_up_after:
            await backup.backup(api.services, dest)
        status, done = await api.call("POST", f"/v1/recordings/{rec['id']}/redactions",
                                      {"spans": [span], "reason": "pci"})
        assert status == 201, done
    redacted = await (await api.audio(rec["id"], "legal_protection", "compliance")).read()
    assert redacted != original

    target = restored_config(config, tmp_path)
    report = await restore.restore(target, clock, dest, None, [config.erasure_ledger_path])
    assert report.audit_ok and report.warnings == []
    assert [r["outcome"] for r in report.redactions_replayed] == \
        ["redacted"] * (2 - backed_up_after)
    client: TestClient = await aiohttp_client(create_app(target, clock))
    services = client.server.app[SERVICES]
    response = await client.get(f"/v1/recordings/{rec['id']}/audio", headers=api.auth(
        "compliance") | {"Access-Purpose": "legal_protection"})
    assert response.status == 200 and await response.read() == redacted
    # The restored copy keeps no blob of the audio from before the redactions.
    assert len(await stored_blobs(services)) == 1
    entries = await client.get("/v1/audit", params={"action": "redaction_replayed"},
                               headers=api.auth("auditor"))
    assert [e["recording_id"] for e in (await entries.json())["items"]] == \
        [rec["id"]] * (2 - backed_up_after)


async def _refused(config: Config, tmp_path: Path, clock: FrozenClock, dest: Path,
                   match: str) -> None:
    """A restore of ``dest`` is refused with ``match``, having written nothing."""
    target = restored_config(config, tmp_path)
    with pytest.raises(BackupError, match=match):
        await restore.restore(target, clock, dest, None, [])
    assert not target.data_dir.exists()


async def test_a_damaged_backup_is_refused_before_anything_is_written(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path,
        sqlite_only: None) -> None:
    await api.uploaded(wav_tone(0.3), call_id="a")
    dest = tmp_path / "backup"
    taken = await backup.backup(api.services, dest)
    first = next(backup.read_blob_list(taken.path, taken.manifest))
    blob = dest / backup.blob_relpath(first["name"])
    damaged = bytearray(blob.read_bytes())
    damaged[100] ^= 1
    blob.write_bytes(bytes(damaged))
    await _refused(config, tmp_path, clock, dest, "does not match the manifest")


async def test_a_forged_manifest_is_refused(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path,
        sqlite_only: None) -> None:
    await api.uploaded(wav_tone(0.3), call_id="a")
    dest = tmp_path / "backup"
    taken = await backup.backup(api.services, dest)
    manifest = json.loads((taken.path / backup.MANIFEST).read_bytes())
    manifest["taken_at"] = "2030-01-01T00:00:00Z"
    (taken.path / backup.MANIFEST).write_bytes(backup.manifest_bytes(manifest))
    await _refused(config, tmp_path, clock, dest, "signature does not verify")


def _drop_blob_list_sum(m: dict[str, Any]) -> None:
    del m["blobs"]["sha256"]


def _other_blob_list_sum(m: dict[str, Any]) -> None:
    m["blobs"]["sha256"] = "0" * 64


def _no_catalog(m: dict[str, Any]) -> None:
    del m["catalog"]


@pytest.mark.parametrize("edit", [_drop_blob_list_sum, _other_blob_list_sum, _no_catalog],
                         ids=["a key removed", "the blob list's sum changed",
                              "a section removed"])
def test_any_edit_of_the_manifest_is_refused_first_naming_the_manifest(
        tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    secrets = tmp_path / "secrets" / "root.key"
    data, config, _ = new_service(tmp_path, f'[keys]\nroot_key_file = "{secrets}"\n',
                                  "auditor")
    dest = tmp_path / "backup"
    run_cli(data, "backup", str(dest), "--config", str(config), check=True)
    (folder,) = [p.parent for p in (dest / "snapshots").glob("*/" + backup.MANIFEST)]
    manifest = json.loads((folder / backup.MANIFEST).read_bytes())
    edit(manifest)
    (folder / backup.MANIFEST).write_bytes(backup.manifest_bytes(manifest))
    into = tmp_path / "restored"
    done = run_cli(into, "restore", str(dest), "--into", str(into), "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(folder / backup.MANIFEST) in done.stderr and "altered" in done.stderr
    assert not into.exists() or not any(into.iterdir())


async def test_an_edited_list_of_blobs_is_refused(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path,
        sqlite_only: None) -> None:
    for i in range(3):
        await api.uploaded(wav_tone(0.3, frequency=300 + i), call_id=f"l-{i}")
    dest = tmp_path / "backup"
    taken = await backup.backup(api.services, dest)
    listed = taken.path / backup.BLOB_LIST
    # A blob left out of the list (so that a restore would skip it): the list's sum fails.
    listed.write_text("".join(listed.read_text().splitlines(keepends=True)[1:]))
    await _refused(config, tmp_path, clock, dest,
                   "the list of blobs of snapshot .* does not match the manifest")


async def test_a_snapshot_of_the_first_format_still_restores(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path,
        sqlite_only: None) -> None:
    """Backups taken before the blob list moved out of the manifest (format 1)."""
    rec = await api.uploaded(wav_tone(0.3), call_id="old")
    dest = tmp_path / "backup"
    taken = await backup.backup(api.services, dest)
    manifest = dict(taken.manifest)
    manifest["format"] = "recordings-backup/1"
    manifest["blobs"] = list(backup.read_blob_list(taken.path, taken.manifest))
    body = backup.manifest_bytes(manifest)
    (taken.path / backup.BLOB_LIST).unlink()
    (taken.path / backup.MANIFEST).write_bytes(body)
    (taken.path / backup.SIGNATURE).write_bytes(
        base64.b64encode(api.services.signing_key.sign(body)) + b"\n")
    target = restored_config(config, tmp_path)
    report = await restore.restore(target, clock, dest, None, [])
    assert report.blobs == 1
    async with open_services(target, clock) as services:
        async with services.database.read() as conn:
            restored = await catalog.get_recording(conn, rec["id"])
        assert restored is not None and restored.blob_name
        assert await services.blobs.size(restored.blob_name) > 0


async def test_incremental_backups_copy_and_list_only_what_changed(
        api: Api, tmp_path: Path, clock: FrozenClock) -> None:
    kept = [await api.uploaded(wav_tone(0.3, frequency=300 + i), call_id=f"a{i}")
            for i in range(3)]
    dest = tmp_path / "backup"
    first = await backup.backup(api.services, dest)
    assert first.copied_blobs == 3 and first.manifest["base"] is None
    new = await api.uploaded(wav_tone(0.3, frequency=700), call_id="b")
    status, _ = await api.call("DELETE", f"/v1/recordings/{kept[0]['id']}",
                               {"reason": "customer asked"})
    assert status == 200
    clock.advance(seconds=1)
    second = await backup.backup(api.services, dest)
    # Found through the audit log's uploads since the first: no walk of the catalog.
    assert second.manifest["base"]["snapshot"] == first.snapshot
    assert second.copied_blobs == 1 and second.blobs == 1
    listed = list(backup.read_blob_list(second.path, second.manifest))
    async with api.services.database.read() as conn:
        rec = await catalog.get_recording(conn, new["id"])
    assert rec is not None and [b["name"] for b in listed] == [rec.blob_name]
    # The chain lists every blob the snapshot reads, once, in name order.
    chain = backup.snapshot_chain(dest, second.path, second.manifest)
    names = [b["name"] for b in backup.chain_blob_list(chain)]
    assert len(names) == 4 and names == sorted(names)
    clock.advance(seconds=1)
    third = await backup.backup(api.services, dest, full=True)
    assert third.manifest["base"] is None and third.blobs == 3 and third.copied_blobs == 0
    if api.services.config.database_url:
        assert second.manifest["catalog"] == {"kind": "postgresql"}
        assert "pg_dump" in second.messages[0]
    # No key material in a backup: nothing there opens without the root key.
    assert not [p for p in files_under(dest) if p.name.endswith(".key")]


async def test_a_restore_from_an_incremental_snapshot_reads_its_whole_chain(
        api: Api, config: Config, clock: FrozenClock, tmp_path: Path, sqlite_only: None,
        aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "FULL_EVERY", 3)
    dest = tmp_path / "backup"
    audio, taken = {}, []
    for i in range(4):
        audio[f"c{i}"] = wav_tone(0.3, frequency=300 + 40 * i)
        rec = await api.uploaded(audio[f"c{i}"], call_id=f"c{i}")
        audio[rec["id"]] = audio.pop(f"c{i}")
        taken.append(await backup.backup(api.services, dest))
        clock.advance(seconds=1)
    # Full, incremental, incremental, then full again (FULL_EVERY).
    assert [t.manifest["chain_length"] for t in taken] == [0, 1, 2, 0]

    target = restored_config(config, tmp_path)
    report = await restore.restore(target, clock, dest, taken[2].snapshot, [])
    assert report.audit_ok and report.blobs == 3
    client: TestClient = await aiohttp_client(create_app(target, clock))
    headers = api.auth("supervisor") | {"Access-Purpose": "training"}
    for rec_id, data in list(audio.items())[:3]:
        response = await client.get(f"/v1/recordings/{rec_id}/audio", headers=headers)
        assert response.status == 200 and await response.read() == data

    # Without its base, an incremental snapshot is refused before anything is written.
    for path in (taken[0].path).iterdir():
        path.unlink()
    taken[0].path.rmdir()
    again = restored_config(config, tmp_path / "again")
    with pytest.raises(BackupError, match=f"needs snapshot {taken[0].snapshot}, which is "
                                          f"missing"):
        await restore.restore(again, clock, dest, taken[2].snapshot, [])
    assert not again.data_dir.exists()


async def test_backup_while_uploads_and_streams_run_restores_byte_exact(
        tmp_path: Path) -> None:
    secrets = tmp_path / "secrets" / "root.key"
    data, config, tokens = new_service(
        tmp_path, f'[keys]\nroot_key_file = "{secrets}"\n', "ingest", "supervisor", "auditor")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sent: dict[str, bytes] = {}
    ids: dict[str, str] = {}
    process = await start_serve(data, config, port)
    try:
        async with aiohttp.ClientSession() as session:
            async def upload(n: int) -> None:
                audio = wav_tone(0.5, frequency=200 + 7 * n)
                async with session.put(
                        f"{base}/v1/calls/call-{n}/recording", data=audio,
                        headers={"Authorization": f"Bearer {tokens['ingest']}"},
                        params=[("started_at", "2026-11-25T09:00:00Z"),
                                ("purpose", "training")]) as r:
                    assert r.status == 201, await r.text()
                    ids[f"call-{n}"] = (await r.json())["id"]
                sent[f"call-{n}"] = audio

            async def stream(rec_id: str) -> None:
                async with session.get(
                        f"{base}/v1/recordings/{rec_id}/audio",
                        headers={"Authorization": f"Bearer {tokens['supervisor']}",
                                 "Access-Purpose": "training"}) as r:
                    assert r.status == 200
                    await r.read()

            for n in range(10):
                await upload(n)
            before = set(ids)
            running = asyncio.create_task(asyncio.create_subprocess_exec(
                sys.executable, "-m", "recordings_service", "backup", str(tmp_path / "b"),
                "--data-dir", str(data), "--config", str(config), env=service_env(),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
            n = 10
            proc = None
            while proc is None or proc.returncode is None:
                await asyncio.gather(upload(n), stream(ids["call-0"]),
                                     stream(ids[f"call-{n - 1}"]))
                n += 1
                if proc is None and running.done():
                    proc = running.result()
                    waiter = asyncio.create_task(proc.communicate())
                if proc is not None and waiter.done():
                    break
            _, err = await waiter
            assert proc.returncode == 0, err.decode()
    finally:
        process.terminate()
        await process.wait()

    restored = tmp_path / "restored"
    result = run_cli(restored, "restore", str(tmp_path / "b"), "--into", str(restored),
                     "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["audit_verified"] is True
    assert run_cli(restored, "audit", "verify", "--config", str(config)).returncode == 0

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await start_serve(restored, config, port)
    try:
        async with aiohttp.ClientSession() as session:
            present = set()
            for call, rec_id in ids.items():
                async with session.get(
                        f"{base}/v1/recordings/{rec_id}/audio",
                        headers={"Authorization": f"Bearer {tokens['supervisor']}",
                                 "Access-Purpose": "training"}) as r:
                    if r.status == 404:
                        continue  # uploaded after the snapshot
                    assert r.status == 200
                    body = await r.read()
                assert hashlib.sha256(body).digest() == hashlib.sha256(sent[call]).digest()
                present.add(call)
    finally:
        process.terminate()
        await process.wait()
    assert before <= present  # everything acknowledged before the backup began


def test_restore_without_a_newer_ledger_warns_loudly(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets" / "root.key"
    data, config, _ = new_service(tmp_path, f'[keys]\nroot_key_file = "{secrets}"\n',
                                  "auditor")
    assert run_cli(data, "backup", str(tmp_path / "b"), "--config",
                   str(config)).returncode == 0
    restored = tmp_path / "restored"
    result = run_cli(restored, "restore", str(tmp_path / "b"), "--into", str(restored),
                     "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "WARNING: no erasure ledger" in result.stderr
    # Into a directory holding data: refused.
    again = run_cli(restored, "restore", str(tmp_path / "b"), "--into", str(restored),
                    "--config", str(config))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_the_drill_a_new_machine_from_a_key_export_and_a_backup(tmp_path: Path) -> None:
    data, config, _ = new_service(tmp_path, "", "auditor")
    export = tmp_path / "keys" / "root-key.export"
    short = run_cli(data, "keys", "export", "--out", str(export), "--config", str(config),
                    stdin="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    made = run_cli(data, "keys", "export", "--out", str(export), "--config", str(config),
                   stdin="correct horse battery staple\n")
    assert made.returncode == 0, made.stderr
    assert export.stat().st_mode & 0o777 == 0o600
    assert (data / "root.key").read_bytes() not in export.read_bytes()
    assert run_cli(data, "backup", str(tmp_path / "b"), "--config",
                   str(config)).returncode == 0

    # The machine is lost; a new one gets the key export and the backup.
    new = tmp_path / "new-machine" / "data"
    wrong = run_cli(new, "keys", "import", "--in", str(export), "--config", str(config),
                    stdin="wrong horse battery staple\n")
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
    imported = run_cli(new, "keys", "import", "--in", str(export), "--config", str(config),
                       stdin="correct horse battery staple\n")
    assert imported.returncode == 0, imported.stderr
    assert (new / "root.key").read_bytes() == (data / "root.key").read_bytes()
    restored = run_cli(new, "restore", str(tmp_path / "b"), "--into", str(new),
                       "--erasures", str(data / "erasure-ledger.jsonl"),
                       "--config", str(config))
    assert restored.returncode == 0, restored.stderr
    assert "WARNING" not in restored.stderr or "no erasure ledger" in restored.stderr
    verified = run_cli(new, "audit", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout
    tokens = run_cli(new, "tokens", "list", "--config", str(config))
    assert json.loads(tokens.stdout)[0]["name"] == "auditor"


async def test_each_erasure_reaches_the_backup_destination_at_once(
        api: Api, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    api.services.config = api.services.config.with_overrides(backup_destination=dest)
    rec = await api.uploaded(wav_tone(0.3), call_id="a")
    status, _ = await api.call("DELETE", f"/v1/recordings/{rec['id']}",
                               {"reason": "customer asked"})
    assert status == 200
    copied = list(erasure_ledger.read(dest / erasure_ledger.FILE_NAME))
    assert [e["recording_id"] for e in copied] == [rec["id"]]
    assert (dest / erasure_ledger.FILE_NAME).read_bytes() == \
        api.services.config.erasure_ledger_path.read_bytes()
