"""Graceful shutdown of a real ``serve`` process: an upload in flight either finishes or
leaves nothing visible and nothing on disk after the next start."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.audio import wav_noise
from tests.integration.helpers import free_port, run_cli, start_serve

START = {"started_at": "2026-11-24T09:00:00Z", "purpose": "training"}


def _cli(data: Path, *args: str) -> str:
    return run_cli(data, *args, check=True).stdout


async def _slow_body(audio: bytes, started: asyncio.Event, pause: float) -> AsyncIterator[bytes]:
    # The first piece is past what the blob writer gathers in memory, so a partial file
    # is on disk while the rest trickles in.
    yield audio[:1_200_000]
    started.set()
    for i in range(1_200_000, len(audio), 100_000):
        await asyncio.sleep(pause)
        yield audio[i : i + 100_000]


async def _upload_during_sigterm(tmp_path: Path, shutdown_timeout: float, pause: float,
                                 ) -> tuple[int | None, Path, Path]:
    data, config = tmp_path / "data", tmp_path / "c.toml"
    config.write_text(f"[server]\nshutdown_timeout = {shutdown_timeout}\n"
                      "[scheduler]\nenabled = false\n")
    token = _cli(data, "tokens", "create", "--name", "pbx", "--role", "ingest").split()[-1]
    port = free_port()
    process = await start_serve(data, config, port)
    started = asyncio.Event()
    status: int | None = None
    async with aiohttp.ClientSession() as session:
        upload = asyncio.ensure_future(session.put(
            f"http://127.0.0.1:{port}/v1/calls/in-flight/recording", params=START,
            data=_slow_body(wav_noise(2_000_000), started, pause),
            headers={"Authorization": f"Bearer {token}"}))
        await started.wait()
        for _ in range(200):  # until the server is receiving the body
            if any((data / "tmp").iterdir()):
                break
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        try:
            response = await upload
            status = response.status
        except aiohttp.ClientError:
            status = None
    assert await asyncio.wait_for(process.wait(), 30) == 0
    return status, data, config


async def test_sigterm_lets_an_upload_in_flight_finish(tmp_path: Path) -> None:
    status, data, _ = await _upload_during_sigterm(tmp_path, shutdown_timeout=30, pause=0.05)
    assert status == 201
    assert len([p for p in (data / "blobs").rglob("*") if p.is_file()]) == 1


async def test_an_upload_cut_by_shutdown_leaves_nothing_after_restart(tmp_path: Path) -> None:
    status, data, config = await _upload_during_sigterm(tmp_path, shutdown_timeout=0.5,
                                                        pause=0.3)
    assert status is None or status >= 500
    port = free_port()
    process = await start_serve(data, config, port)  # the next start cleans up
    try:
        assert [p for p in (data / "tmp").iterdir()] == []
        assert [p for p in (data / "blobs").rglob("*") if p.is_file()] == []
        auditor = _cli(data, "tokens", "create", "--name", "a", "--role", "compliance")
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/v1/recordings", params={"call_id": "in-flight"},
                headers={"Authorization": f"Bearer {auditor.split()[-1]}"}) as r:
            assert json.loads(await r.text())["items"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()
