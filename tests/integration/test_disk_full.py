"""A full disk, on a real small tmpfs: 507 for writes, 503 for reads that cannot be
audited, /readyz naming the disk, a clean stop and start, and recovery once space is
freed. Needs root (CI runs as root); skipped elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from recordings_service.app import create_app
from recordings_service.auth import create_token
from recordings_service.config import load_config
from tests.audio import wav_noise, wav_tone
from tests.conftest import Api, FrozenClock
from tests.integration.helpers import (
    free_port,
    incomplete,
    recording_count,
    run_cli,
    service_env,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fills the file system to the last byte; returns the filler to delete later."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 65536)

    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as f:
        for _ in range(4096):
            f.write(b"\0")

    return filler


@pytest.fixture
async def api(aiohttp_client: Any, small_disk: Path, clock: FrozenClock) -> Api:
    config = load_config(environ={}, data_dir=str(small_disk / "data")).with_overrides(
        scheduler_enabled=False, min_free_disk_bytes=0)
    client = await aiohttp_client(create_app(config, clock))
    api = Api(client, clock)
    for role in ("ingest", "supervisor", "auditor"):
        api.tokens[role] = await create_token(api.services.database, role, [role], clock())
    return api


async def test_a_full_disk_refuses_clearly_and_recovers_by_itself(
        api: Api, small_disk: Path) -> None:
    rec = await api.uploaded(wav_tone(0.5), call_id="before")
    filler = fill(small_disk)

    upload = await api.upload(wav_noise(900_000), call_id="while-full")
    assert upload.status == 507
    assert (await upload.json())["reason"] == "insufficient_storage"
    assert await incomplete(api.services) == 0

    async def chunked() -> Any:  # no Content-Length: the disk itself refuses the bytes
        audio = wav_noise(2_000_000)
        for i in range(0, len(audio), 256 * 1024):
            yield audio[i : i + 256 * 1024]

    put = await api.client.put("/v1/calls/chunked/recording", data=chunked(),
                               params={"started_at": "2026-11-24T09:00:00Z",
                                       "purpose": "training"}, headers=api.auth("ingest"))
    assert put.status == 507
    assert (await put.json())["reason"] == "insufficient_storage"
    assert await incomplete(api.services) == 0

    read = await api.audio(rec["id"], "training", "supervisor")
    assert read.status == 503
    assert (await read.json())["reason"] == "insufficient_storage"
    assert read.headers["Retry-After"]

    api.services.config = api.services.config.with_overrides(min_free_disk_bytes=1024**2)
    ready = await api.client.get("/readyz")
    assert ready.status == 503
    assert "disk nearly full" in (await ready.json())["detail"]

    filler.unlink()
    assert (await api.client.get("/readyz")).status == 200
    assert (await api.audio(rec["id"], "training", "supervisor")).status == 200
    assert (await api.upload(wav_noise(300_000), call_id="after")).status == 201
    assert await recording_count(api.services) == 2


async def test_serve_stops_and_starts_cleanly_on_a_full_disk(small_disk: Path) -> None:
    data, config = small_disk / "data", small_disk.parent / "c.toml"
    config.write_text("[scheduler]\nenabled = false\n[limits]\nmin_free_disk_bytes = 1048576\n")
    assert run_cli(data, "tokens", "create", "--name", "a", "--role", "auditor").returncode == 0
    port = free_port()

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recordings_service", "serve", "--data-dir", str(data),
            "--config", str(config), "--port", str(port), env=service_env(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    async def readyz() -> int | None:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                        return r.status
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        return None

    async def stop(process: asyncio.subprocess.Process) -> str:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert process.stderr is not None
        return (await process.stderr.read()).decode()

    first = await start()
    assert await readyz() == 200
    filler = fill(small_disk)
    assert "Traceback" not in await stop(first)

    second = await start()
    assert await readyz() == 503  # up, and saying why it is not ready
    filler.unlink()
    assert await readyz() == 200
    assert "Traceback" not in await stop(second)
