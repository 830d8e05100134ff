"""Two service processes with their own data directories sharing one PostgreSQL catalog
and one root key: the key hierarchy in the catalog is what every replica uses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from tests.audio import wav_tone
from tests.conftest import PG_URL, reset_postgres
from tests.integration.helpers import free_port, run_cli, start_serve

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs PostgreSQL "
                                "(RECORDINGS_TEST_DATABASE_URL; CI sets it)")


async def test_two_replicas_share_rotations_links_and_the_signing_key(tmp_path: Path) -> None:
    assert PG_URL is not None
    await reset_postgres(PG_URL)
    env = {"RECORDINGS_DATABASE_URL": PG_URL}
    config = tmp_path / "c.toml"
    config.write_text("[scheduler]\nenabled = false\n"
                      f'[keys]\nroot_key_file = "{tmp_path / "secrets" / "root.key"}"\n'
                      "refresh_interval_seconds = 1\n")
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    tokens = {role: run_cli(a_dir, "tokens", "create", "--name", role, "--role", role,
                            "--config", str(config), env=env, check=True).stdout.split()[-1]
              for role in ("ingest", "supervisor", "auditor")}
    # Blobs on a shared volume (S3 comes with the scale-out work): the keys under test
    # are what the catalog shares.
    (a_dir / "blobs").mkdir(mode=0o700, exist_ok=True)
    b_dir.mkdir(mode=0o700)
    (b_dir / "blobs").symlink_to(a_dir / "blobs")
    ports = free_port(), free_port()
    a_url, b_url = (f"http://127.0.0.1:{p}" for p in ports)
    a = await start_serve(a_dir, config, ports[0], env=env)
    b = await start_serve(b_dir, config, ports[1], env=env)
    try:
        async with aiohttp.ClientSession() as session:
            async def upload(base: str, call: str, audio: bytes) -> dict[str, object]:
                async with session.put(
                        f"{base}/v1/calls/{call}/recording", data=audio,
                        headers={"Authorization": f"Bearer {tokens['ingest']}"},
                        params=[("started_at", "2026-11-25T09:00:00Z"),
                                ("purpose", "training")]) as r:
                    assert r.status == 201, await r.text()
                    return dict(await r.json())

            async def play(base: str, rec_id: object) -> bytes:
                async with session.get(
                        f"{base}/v1/recordings/{rec_id}/audio",
                        headers={"Authorization": f"Bearer {tokens['supervisor']}",
                                 "Access-Purpose": "training"}) as r:
                    assert r.status == 200, await r.text()
                    return await r.read()

            first = wav_tone(0.4, frequency=310)
            assert (await upload(a_url, "one", first))["key_version"] == 1
            # A rotation through replica A's data directory: no file is copied to B.
            rotated = run_cli(a_dir, "keys", "rotate", "--config", str(config), env=env)
            assert rotated.returncode == 0, rotated.stderr
            await asyncio.sleep(1.2)  # B's refresh interval
            second = wav_tone(0.4, frequency=620)
            on_b = await upload(b_url, "two", second)
            assert on_b["key_version"] == 2
            third = wav_tone(0.3)
            on_a = await upload(a_url, "three", third)
            assert on_a["key_version"] == 2
            # Each replica reads what the other wrapped under the new version.
            assert await play(a_url, on_b["id"]) == second
            assert await play(b_url, on_a["id"]) == third

            # A playback link made on A plays on B.
            async with session.post(
                    f"{a_url}/v1/recordings/{on_b['id']}/playback-links",
                    json={"purpose": "training"},
                    headers={"Authorization": f"Bearer {tokens['supervisor']}"}) as r:
                assert r.status == 201, await r.text()
                link = (await r.json())["url"]
            async with session.get(f"{b_url}{link}") as r:
                assert r.status == 200 and await r.read() == second
    finally:
        for process in (a, b):
            process.terminate()
            await process.wait()

    # Both sign checkpoints with the one signing key; each verifies the shared log.
    for replica in (a_dir, b_dir):
        made = run_cli(replica, "audit", "checkpoint", "--config", str(config), env=env)
        assert made.returncode == 0, made.stderr
    for replica in (a_dir, b_dir):
        verified = run_cli(replica, "audit", "verify", "--config", str(config), env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["checkpoints"] >= 2
