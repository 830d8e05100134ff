"""``server.workers``: several serve processes on one port, one data directory, one audit
chain and one set of metrics; they stop together, a worker that dies is replaced, and the
extra ones stop by themselves when the first dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.audio import wav_noise
from tests.integration.helpers import children, free_port, listeners, run_cli, start_serve

START = {"started_at": "2026-11-24T09:00:00Z", "purpose": "training"}


def _loaded(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@asynccontextmanager
async def _serve(tmp_path: Path, server: str = "",
                 ) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, Path]]:
    data, config = tmp_path / "data", tmp_path / "c.toml"
    config.write_text(f"[server]\nworkers = 2\n{server}[scheduler]\nenabled = false\n")
    port = free_port()
    process = await start_serve(data, config, port, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(200):  # until the worker listens too
            if listeners(port) == 2:
                break
            await asyncio.sleep(0.05)
        assert listeners(port) == 2, "the extra worker never listened"
        yield process, port, data
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_workers_serve_one_port_with_one_audit_chain_and_stop_together(
        tmp_path: Path) -> None:
    async with _serve(tmp_path) as (process, port, data):
        [worker] = children(process.pid)
        ingest = run_cli(data, "tokens", "create", "--name", "pbx", "--role", "ingest",
                         check=True).stdout.split()[-1]
        supervisor = run_cli(data, "tokens", "create", "--name", "sv", "--role", "supervisor",
                             check=True).stdout.split()[-1]
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session, session.put(
                f"{base}/v1/calls/c1/recording", params=START, data=wav_noise(300_000),
                headers={"Authorization": f"Bearer {ingest}"}) as r:
            assert r.status == 201
            rid = (await r.json())["id"]
        # A new connection per request, so that the kernel spreads them over both.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def fetch(i: int) -> int:
                async with session.get(f"{base}/v1/recordings/{rid}/audio", headers={
                        "Authorization": f"Bearer {supervisor}", "Access-Purpose": "training",
                        "Range": f"bytes={i}-{i + 999}"}) as r:
                    assert await r.read() == wav_noise(300_000)[i : i + 1000]
                    return r.status
            statuses = await asyncio.gather(*(fetch(i * 1000) for i in range(120)))
        assert set(statuses) == {206}
        # Whichever process answers a scrape counts for both.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(6):
                async with session.get(f"{base}/metrics") as r:
                    text = await r.text()
                served = [line for line in text.splitlines() if line.startswith(
                    'recordings_http_requests_total{method="GET",'
                    'route="/v1/recordings/{recording_id}/audio",status="206"}')]
                assert served and float(served[0].split()[-1]) == 120

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert not _alive(worker)
        assert process.stderr is not None
        lines = [json.loads(line) for line in (await process.stderr.read()).splitlines()]
    served_by = {e["pid"] for e in lines
                 if e.get("route") == "/v1/recordings/{recording_id}/audio"}
    assert served_by == {process.pid, worker}
    # Both appended to one chain: every access is in it, and it verifies.
    report = json.loads(run_cli(data, "audit", "verify", check=True).stdout)
    assert report["ok"] and report["first_bad_seq"] is None
    assert report["entries"] == 2 + 1 + 120  # tokens, the upload, each access decision


async def test_an_extra_worker_stops_when_the_first_process_dies(tmp_path: Path) -> None:
    async with _serve(tmp_path) as (process, _, _):
        [worker] = children(process.pid)
        process.kill()  # no SIGTERM to forward: the worker sees its stdin close
        await process.wait()
        for _ in range(100):
            if not _alive(worker):
                break
            await asyncio.sleep(0.1)
        assert not _alive(worker)


async def test_a_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    async with _serve(tmp_path) as (process, port, _):
        [worker] = children(process.pid)
        os.kill(worker, signal.SIGKILL)
        replacement: list[int] = []
        for _ in range(100):
            replacement = [p for p in children(process.pid) if p != worker and _alive(p)]
            if replacement:
                break
            await asyncio.sleep(0.1)
        assert replacement, "no worker was started again"
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert not _alive(replacement[0])


async def test_the_uvloop_event_loop_serves_audited_ranges_in_every_worker(
        tmp_path: Path) -> None:
    async with _serve(tmp_path, 'event_loop = "uvloop"\n') as (process, port, data):
        for pid in (process.pid, *children(process.pid)):
            assert _loaded(pid, "uvloop"), pid
        ingest = run_cli(data, "tokens", "create", "--name", "pbx", "--role", "ingest",
                         check=True).stdout.split()[-1]
        supervisor = run_cli(data, "tokens", "create", "--name", "sv", "--role", "supervisor",
                             check=True).stdout.split()[-1]
        base = f"http://127.0.0.1:{port}"
        audio = wav_noise(300_000)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.put(f"{base}/v1/calls/c1/recording", params=START, data=audio,
                                   headers={"Authorization": f"Bearer {ingest}"}) as r:
                assert r.status == 201
                rid = (await r.json())["id"]
            for i in range(0, 40_000, 1000):
                async with session.get(f"{base}/v1/recordings/{rid}/audio", headers={
                        "Authorization": f"Bearer {supervisor}", "Access-Purpose": "training",
                        "Range": f"bytes={i}-{i + 999}"}) as r:
                    assert r.status == 206 and await r.read() == audio[i : i + 1000]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
