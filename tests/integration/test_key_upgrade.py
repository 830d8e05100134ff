"""A data directory written by the previous release (key files beside the catalog) is
upgraded in place by ``keys upgrade``: old recordings play, old tombstones still match
their subject, the audit log verifies, and no plaintext key file is left."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import aiohttp

from tests.audio import wav_tone
from tests.integration.helpers import free_port, run_cli, start_serve

FIXTURE = Path(__file__).parents[1] / "fixtures" / "previous_release"
LEGACY = ("keyring.json", "audit-signing.key", "playback-link.key")


def _unpack(tmp_path: Path) -> tuple[Path, Path, dict[str, object]]:
    with tarfile.open(FIXTURE / "datadir.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    config = tmp_path / "c.toml"
    config.write_text("[scheduler]\nenabled = false\n")
    return tmp_path / "data", config, json.loads((FIXTURE / "expected.json").read_text())


def test_the_previous_release_is_refused_until_upgraded(tmp_path: Path) -> None:
    data, config, _ = _unpack(tmp_path)
    for command in (["serve", "--port", "0"], ["keys", "status"]):
        refused = run_cli(data, *command, "--config", str(config))
        assert refused.returncode in (1, 2)
        assert "keys upgrade" in refused.stderr and "Traceback" not in refused.stderr
    assert all((data / name).exists() for name in LEGACY)
    assert not (data / "root.key").exists()


async def test_upgrade_in_place_keeps_every_recording_readable(tmp_path: Path) -> None:
    data, config, expected = _unpack(tmp_path)
    legacy_versions = json.loads((data / "keyring.json").read_text())["versions"]
    upgraded = run_cli(data, "keys", "upgrade", "--config", str(config))
    assert upgraded.returncode == 0, upgraded.stderr
    report = json.loads(upgraded.stdout)
    assert report["key_versions"] == [v["version"] for v in legacy_versions] == [1, 2]
    assert not any((data / name).exists() for name in LEGACY)
    assert (data / "root.key").stat().st_mode & 0o777 == 0o600
    again = run_cli(data, "keys", "upgrade", "--config", str(config))
    assert again.returncode == 2 and "nothing to upgrade" in again.stderr

    tokens = expected["tokens"]
    recordings = expected["recordings"]
    assert isinstance(tokens, dict) and isinstance(recordings, dict)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await start_serve(data, config, port)
    try:
        async with aiohttp.ClientSession() as session:
            for rec_id, rec in recordings.items():
                async with session.get(
                        f"{base}/v1/recordings/{rec_id}/audio",
                        headers={"Authorization": f"Bearer {tokens['supervisor']}",
                                 "Access-Purpose": "training"}) as r:
                    if rec.get("erased"):
                        assert r.status == 410
                        continue
                    assert r.status == 200, await r.text()
                    assert hashlib.sha256(await r.read()).hexdigest() == rec["sha256"]
            # Recordings under both old key versions were read.
            async with session.get(f"{base}/v1/recordings/{next(iter(recordings))}",
                                   headers={"Authorization": f"Bearer {tokens['compliance']}"}
                                   ) as r:
                assert r.status == 200
            # The tombstone of C-1's erased recording is still found by its subject: the
            # subject-reference key came over unchanged.
            async with session.post(
                    f"{base}/v1/subjects/C-1/export",
                    headers={"Authorization": f"Bearer {tokens['compliance']}"}) as r:
                assert r.status == 200
                body = await r.read()
            erased = next(i for i, r in recordings.items() if r.get("erased"))
            with zipfile.ZipFile(io.BytesIO(body)) as export:
                everything = b"".join(export.read(n) for n in export.namelist())
            assert erased.encode() in everything
            # New uploads go under the newest old version, and play.
            audio = wav_tone(0.4, frequency=880)
            async with session.put(
                    f"{base}/v1/calls/after-upgrade/recording", data=audio,
                    headers={"Authorization": f"Bearer {tokens['ingest']}"},
                    params=[("started_at", "2026-11-25T09:00:00Z"),
                            ("purpose", "training")]) as r:
                assert r.status == 201, await r.text()
                new = await r.json()
            assert new["key_version"] == 2
            async with session.get(
                    f"{base}/v1/recordings/{new['id']}/audio",
                    headers={"Authorization": f"Bearer {tokens['supervisor']}",
                             "Access-Purpose": "training"}) as r:
                assert await r.read() == audio
    finally:
        process.terminate()
        await process.wait()
    verified = run_cli(data, "audit", "verify", "--config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status = json.loads(run_cli(data, "keys", "status", "--config", str(config)).stdout)
    assert status["current_version"] == 2
    assert {v["version"]: v["data_keys"] for v in status["versions"]} == {1: 2, 2: 2}
