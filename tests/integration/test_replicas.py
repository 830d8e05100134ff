"""Two replicas (own data directories and ports) sharing PostgreSQL, one S3 bucket and
one root key: what one does the other serves, jobs do not collide, and a replica killed
mid-upload loses nothing acknowledged while the other keeps serving."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.audio import wav_noise, wav_tone
from tests.conftest import PG_URL, reset_postgres
from tests.integration.helpers import free_port, run_cli, start_serve
from tests.s3 import SeaweedFs

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs PostgreSQL "
                                "(RECORDINGS_TEST_DATABASE_URL; CI sets it)")


class Replicas:
    def __init__(self, tmp_path: Path, s3: SeaweedFs) -> None:
        assert PG_URL is not None
        self.env = {"RECORDINGS_DATABASE_URL": PG_URL, "RECORDINGS_BLOB_STORE": "s3",
                    "RECORDINGS_S3_ENDPOINT_URL": s3.endpoint, "RECORDINGS_S3_BUCKET": s3.bucket,
                    "RECORDINGS_S3_PREFIX": s3.new_prefix(), **s3.env()}
        self.config = tmp_path / "c.toml"
        self.config.write_text(
            "[scheduler]\nenabled = false\n"
            f'[keys]\nroot_key_file = "{tmp_path / "secrets" / "root.key"}"\n')
        self.dirs = [tmp_path / "a", tmp_path / "b"]
        self.ports = [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.processes: list[asyncio.subprocess.Process | None] = [None, None]
        self.tokens: dict[str, str] = {}

    def cli(self, replica: int, *args: str) -> Any:
        return run_cli(self.dirs[replica], *args, "--config", str(self.config), env=self.env)

    async def start(self, replica: int) -> None:
        self.processes[replica] = await start_serve(self.dirs[replica], self.config,
                                                    self.ports[replica], env=self.env)

    async def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def test_two_replicas_serve_one_service(tmp_path: Path, s3_env: SeaweedFs) -> None:
    assert PG_URL is not None
    await reset_postgres(PG_URL)
    r = Replicas(tmp_path, s3_env)
    for role in ("ingest", "supervisor", "compliance", "auditor"):
        made = r.cli(0, "tokens", "create", "--name", role, "--role", role)
        assert made.returncode == 0, made.stderr
        r.tokens[role] = made.stdout.split()[-1]
    await r.start(0)
    await r.start(1)
    try:
        async with aiohttp.ClientSession() as session:
            async def upload(replica: int, call: str, audio: bytes,
                             started: str = "2026-11-25T09:00:00Z") -> dict[str, Any]:
                async with session.put(
                        f"{r.urls[replica]}/v1/calls/{call}/recording", data=io.BytesIO(audio),
                        headers=r.auth("ingest"),
                        params=[("started_at", started), ("purpose", "training")]) as resp:
                    assert resp.status == 201, await resp.text()
                    return dict(await resp.json())

            async def play(replica: int, rec_id: str) -> bytes:
                async with session.get(
                        f"{r.urls[replica]}/v1/recordings/{rec_id}/audio",
                        headers=r.auth("supervisor") | {"Access-Purpose": "training"}) as resp:
                    assert resp.status == 200, await resp.text()
                    return await resp.read()

            # An upload through one streams through the other (one large enough to be a
            # multipart upload in the bucket).
            big = wav_noise(9 * 1024 * 1024, seed=3)
            rec = await upload(0, "big", big)
            assert await play(1, rec["id"]) == big

            # A playback link made on one plays on the other.
            async with session.post(f"{r.urls[0]}/v1/recordings/{rec['id']}/playback-links",
                                    json={"purpose": "training"},
                                    headers=r.auth("supervisor")) as resp:
                link = (await resp.json())["url"]
            async with session.get(f"{r.urls[1]}{link}",
                                   headers={"Range": "bytes=100-199"}) as resp:
                assert resp.status == 206 and await resp.read() == big[100:200]

            # Concurrent purge runs on both purge each due recording exactly once.
            due = [await upload(i % 2, f"old-{i}", wav_tone(0.2, frequency=200 + 30 * i),
                                started="2020-01-01T09:00:00Z") for i in range(6)]
            runs = await asyncio.gather(*(
                session.post(f"{url}/v1/purge-runs", json={}, headers=r.auth("compliance"))
                for url in r.urls))
            purged = [set((await resp.json())["purged"]) for resp in runs]
            assert purged[0].isdisjoint(purged[1])
            assert purged[0] | purged[1] == {d["id"] for d in due}
            for d in due:
                async with session.get(f"{r.urls[1]}/v1/recordings/{d['id']}",
                                       headers=r.auth("compliance")) as resp:
                    assert (await resp.json())["deletion_receipt"]["receipt"][
                        "recording_id"] == d["id"]
            async with session.get(f"{r.urls[0]}/v1/audit", headers=r.auth("auditor"),
                                   params={"action": "purge", "limit": "100"}) as resp:
                purge_entries = [e["recording_id"] for e in (await resp.json())["items"]]
            assert sorted(purge_entries) == sorted(d["id"] for d in due)

            # kill -9 of one replica mid-upload: nothing acknowledged is lost and the
            # other keeps serving.
            acknowledged = {rec["id"]: big}
            for i in range(3):
                audio = wav_tone(0.3, frequency=500 + 40 * i)
                acknowledged[(await upload(0, f"ack-{i}", audio))["id"]] = audio
            _, writer = await asyncio.open_connection("127.0.0.1", r.ports[0])
            body = wav_noise(20 * 1024 * 1024, seed=9)
            writer.write((f"PUT /v1/calls/cut/recording?started_at=2026-11-25T09:00:00Z"
                          f"&purpose=training HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {r.tokens['ingest']}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:12_000_000])
            await writer.drain()
            await asyncio.sleep(0.5)
            process = r.processes[0]
            assert process is not None
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            writer.close()
            for rec_id, audio in acknowledged.items():
                assert await play(1, rec_id) == audio
            after = wav_tone(0.3, frequency=990)
            assert await play(1, (await upload(1, "after", after))["id"]) == after
            async with session.get(f"{r.urls[1]}/v1/recordings", headers=r.auth("compliance"),
                                   params={"call_id": "cut"}) as resp:
                assert (await resp.json())["items"] == []
    finally:
        await r.stop()

    # One audit chain with entries from both replicas; it verifies from either.
    for replica in (0, 1):
        assert r.cli(replica, "audit", "checkpoint").returncode == 0
        verified = r.cli(replica, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["entries"] > 20


async def test_a_job_runs_on_one_replica_at_a_time() -> None:
    from storage.database import Database

    assert PG_URL is not None
    one, two = Database(PG_URL), Database(PG_URL)
    try:
        async with one.exclusive("purge") as held:
            assert held
            async with two.exclusive("purge") as elsewhere:
                assert not elsewhere  # the other replica skips this turn
            async with two.exclusive("checkpoint") as other_job:
                assert other_job  # other jobs are not held up
        async with two.exclusive("purge") as after:
            assert after  # released when the first run ended
    finally:
        await one.dispose()
        await two.dispose()
