"""Fault injection on real processes: kill -9 under concurrent uploads (one and two serve
processes) and a retention run killed half way. Afterwards every acknowledged upload is
there and plays back byte for byte, nothing half-written remains, and the audit log
verifies. Figures are printed (run with -s to see them)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.audio import wav_noise
from tests.integration.helpers import (
    children,
    free_port,
    listeners,
    new_service,
    run_cli,
    service_env,
    start_serve,
)

UPLOADS = 40


async def _upload(session: aiohttp.ClientSession, url: str, token: str, i: int,
                  acknowledged: dict[str, bytes], enough: asyncio.Event,
                  answers: list[int] | None = None, pause: float = 0.01) -> None:
    audio = wav_noise(1_200_000 + i * 997, seed=i)

    async def trickle() -> AsyncIterator[bytes]:
        # Staggered and paced, so the kill finds uploads at every stage.
        await asyncio.sleep(i * 0.04)
        for at in range(0, len(audio), 100_000):
            yield audio[at : at + 100_000]
            await asyncio.sleep(pause)

    try:
        async with session.put(f"{url}/v1/calls/kill-{i}/recording", data=trickle(),
                               params={"started_at": "2026-11-24T09:00:00Z",
                                       "purpose": "training"},
                               headers={"Authorization": f"Bearer {token}"}) as response:
            if answers is not None:
                answers.append(response.status)
            if response.status in (200, 201):
                acknowledged[(await response.json())["id"]] = audio
                if len(acknowledged) >= UPLOADS // 4:
                    enough.set()
    except (TimeoutError, aiohttp.ClientError):
        pass  # cut by the kill: not acknowledged, so nothing is owed


def _files(path: Path, suffix: str = "") -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffix)]


@pytest.mark.parametrize("workers", [1, 2])
async def test_kill_9_under_concurrent_uploads_loses_nothing_acknowledged(
        tmp_path: Path, workers: int) -> None:
    data, config, tokens = new_service(tmp_path, f"[server]\nworkers = {workers}\n",
                                       "ingest", "supervisor")
    ingest, listener = tokens["ingest"], tokens["supervisor"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await start_serve(data, config, port)
    acknowledged: dict[str, bytes] = {}
    enough = asyncio.Event()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.ensure_future(
            _upload(session, url, ingest, i, acknowledged, enough)) for i in range(UPLOADS)]
        try:
            await asyncio.wait_for(enough.wait(), 120)
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # every serve process, mid-upload
            await process.wait()
            await asyncio.gather(*tasks)
    killed_with = len(acknowledged)

    started = time.perf_counter()
    process = await start_serve(data, config, port)
    recovered_in = time.perf_counter() - started
    try:
        async with aiohttp.ClientSession() as session:
            for recording_id, audio in acknowledged.items():
                async with session.get(f"{url}/v1/recordings/{recording_id}/audio", headers={
                        "Authorization": f"Bearer {listener}",
                        "Access-Purpose": "training"}) as response:
                    assert response.status == 200, recording_id
                    assert hashlib.sha256(await response.read()).digest() == \
                        hashlib.sha256(audio).digest()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        stored = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
    assert killed_with <= stored < UPLOADS  # cut mid-run; some may have committed unanswered
    assert len(_files(data / "blobs")) == stored  # no orphan, none missing
    assert _files(data / "tmp", ".partial") == []
    report = json.loads(run_cli(data, "audit", "verify", check=True).stdout)
    assert report["ok"]
    print(f"\nkill -9 with workers={workers}: {killed_with} of {UPLOADS} uploads "
          f"acknowledged before the kill, {stored} stored, all acknowledged intact; "
          f"restart to ready {recovered_in:.2f} s")


async def test_a_retention_run_killed_half_way_completes_on_the_next(tmp_path: Path) -> None:
    # Twenty uploads at once from one token: more than a client's default share of slots.
    data, config, tokens = new_service(
        tmp_path, "[purge]\nbatch = 20\n[limits]\nmax_uploads_per_client = 64\n", "ingest")
    ingest = tokens["ingest"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await start_serve(data, config, port)
    try:
        async with aiohttp.ClientSession() as session:
            async def due(i: int) -> None:
                # Kept for training only, from a call two years ago: due now.
                async with session.put(f"{url}/v1/calls/due-{i}/recording",
                                       data=wav_noise(20_000, seed=i), params={
                                           "started_at": "2024-11-24T09:00:00Z",
                                           "purpose": "training"},
                                       headers={"Authorization": f"Bearer {ingest}"}) as r:
                    assert r.status == 201

            for start in range(0, 200, 20):
                await asyncio.gather(*(due(i) for i in range(start, start + 20)))
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 60) == 0

    purge = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "recordings_service", "purge", "--data-dir", str(data),
        "--config", str(config), env=service_env(), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    db = sqlite3.connect(data / "catalog.sqlite3")
    try:
        while purge.returncode is None:
            done = db.execute("SELECT count(*) FROM recordings WHERE state != 'active'"
                              ).fetchone()[0]
            if done >= 10:
                purge.kill()
                break
            await asyncio.sleep(0.002)
        await purge.wait()
        half = db.execute("SELECT count(*) FROM recordings WHERE state != 'active'"
                          ).fetchone()[0]
        assert 0 < half < 200, "the run was not cut half way"
        rerun = run_cli(data, "purge", "--config", str(config), check=True)
        assert json.loads(rerun.stdout)["purged"]
        states = dict(db.execute("SELECT state, count(*) FROM recordings GROUP BY state"))
        assert states == {"purged": 200}
        assert db.execute("SELECT count(*) FROM recordings WHERE wrapped_dek IS NOT NULL "
                          "OR deletion_receipt IS NULL").fetchone()[0] == 0
    finally:
        db.close()
    assert _files(data / "blobs") == []
    assert json.loads(run_cli(data, "audit", "verify", check=True).stdout)["ok"]
    print(f"\npurge killed after {half} of 200; the next run completed the rest")


async def test_a_restart_of_the_first_process_spares_a_draining_workers_uploads(
        tmp_path: Path) -> None:
    """The first serve process dies and is started again while its extra worker still
    receives uploads: the new process's start-up clean-up must leave them alone."""
    data, config, tokens = new_service(tmp_path, "[server]\nworkers = 2\n", "ingest",
                                       "supervisor")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = await start_serve(data, config, port)
    for _ in range(600):  # the worker is up when two sockets listen on the port
        if listeners(port) == 2:
            break
        await asyncio.sleep(0.05)
    assert listeners(port) == 2, "the extra worker never listened"
    [worker] = children(first.pid)
    acknowledged: dict[str, bytes] = {}
    answers: list[int] = []
    never = asyncio.Event()
    restarted: asyncio.subprocess.Process | None = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        # Slow bodies (about 4 s each): still arriving when the new process starts.
        tasks = [asyncio.ensure_future(_upload(session, url, tokens["ingest"], i,
                                               acknowledged, never, answers, pause=0.3))
                 for i in range(UPLOADS)]
        try:
            for _ in range(400):  # until both processes are receiving uploads
                if len({p.parent for p in _files(data / "tmp", ".partial")}) >= 2:
                    break
                await asyncio.sleep(0.05)
            assert len({p.parent for p in _files(data / "tmp", ".partial")}) >= 2, \
                "the uploads did not reach both processes"
            first.kill()  # the worker notices and drains what it is receiving
            await first.wait()
            restarted = await start_serve(data, config, port)  # cleans up at start
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
    assert restarted is not None
    try:
        # Uploads on the killed process lose their connection; the worker finishes its own
        # and answers new ones 503 while it drains. None fails on the server side (all of
        # the worker's did when the new process's start-up removed its files).
        assert acknowledged, "no upload was acknowledged"
        assert set(answers) <= {201, 503}, answers
        async with aiohttp.ClientSession() as session:
            for recording_id, audio in acknowledged.items():
                async with session.get(f"{url}/v1/recordings/{recording_id}/audio", headers={
                        "Authorization": f"Bearer {tokens['supervisor']}",
                        "Access-Purpose": "training"}) as response:
                    assert response.status == 200
                    assert await response.read() == audio
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        await restarted.wait()
    print(f"\nrestart under a draining worker: {len(acknowledged)} of {UPLOADS} acknowledged,"
          f" all intact; answers {sorted(answers)}")



async def test_a_redaction_killed_at_any_moment_leaves_one_whole_recording(
        tmp_path: Path) -> None:
    """kill -9 at moments spread over a redaction's run (reading and rewriting the audio,
    committing, deleting the old blob): afterwards each recording plays either as it was or
    as redacted, never anything else; the catalog says which; the old data key is in no
    row once the redacted audio is what plays; nothing is left half-written."""
    data, config, tokens = new_service(tmp_path, "", "ingest", "compliance")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    compliance = {"Authorization": f"Bearer {tokens['compliance']}"}
    audio = wav_noise(24_000_000)  # 25 minutes of 8 kHz PCM: a rewrite that takes a while
    spans = {"spans": [{"start_ms": 60_000, "end_ms": 75_000}], "reason": "pci"}

    async def upload(session: aiohttp.ClientSession, call_id: str) -> str:
        async with session.put(f"{url}/v1/calls/{call_id}/recording",
                               data=io.BytesIO(audio), params={
                "started_at": "2026-11-24T09:00:00Z", "purpose": "legal_protection"},
                headers={"Authorization": f"Bearer {tokens['ingest']}"}) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["id"])

    def redact(session: aiohttp.ClientSession, recording_id: str) -> Any:
        return session.post(f"{url}/v1/recordings/{recording_id}/redactions", json=spans,
                            headers=compliance)

    process = await start_serve(data, config, port)
    try:
        async with aiohttp.ClientSession() as session:
            first = await upload(session, "warm-up")
            started = time.perf_counter()
            async with redact(session, first) as r:
                assert r.status == 201, await r.text()
                redacted_sha = (await r.json())["sha256"]
            takes = time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    # Denser where the commit and the old blob's deletion fall, late in the run; and past
    # it, since a loaded machine (CI) runs a fresh process's first redaction slower.
    trials = 10
    cases: dict[str, bytes] = {}
    answered = 0
    db = sqlite3.connect(data / "catalog.sqlite3")
    try:
        for k in range(trials):
            process = await start_serve(data, config, port)
            async with aiohttp.ClientSession() as session:
                recording_id = await upload(session, f"killed-{k}")
                cases[recording_id] = db.execute(
                    "SELECT wrapped_dek FROM recordings WHERE id = ?", (recording_id,)
                ).fetchone()[0]

                async def run(recording_id: str = recording_id) -> int:
                    async with redact(session, recording_id) as r:
                        return r.status

                request = asyncio.ensure_future(run())
                await asyncio.sleep(takes * (0.2 + 0.9 * k / (trials - 1)) * (1 if k < 8 else 4))
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
                with contextlib.suppress(aiohttp.ClientError):
                    answered += await request == 201
        process = await start_serve(data, config, port)
        try:
            async with aiohttp.ClientSession() as session:
                outcomes = []
                for recording_id, old_key in cases.items():
                    async with session.get(f"{url}/v1/recordings/{recording_id}/audio",
                                           headers={**compliance,
                                                    "Access-Purpose": "legal_protection"}
                                           ) as r:
                        assert r.status == 200, recording_id
                        served = hashlib.sha256(await r.read()).hexdigest()
                    async with session.get(f"{url}/v1/recordings/{recording_id}/redactions",
                                           headers=compliance) as r:
                        listed = (await r.json())["items"]
                    if served == redacted_sha:
                        assert [x["sha256"] for x in listed] == [redacted_sha]
                        assert db.execute("SELECT count(*) FROM recordings WHERE "
                                          "wrapped_dek = ?", (old_key,)).fetchone()[0] == 0
                        outcomes.append("redacted")
                    else:
                        assert served == hashlib.sha256(audio).hexdigest(), recording_id
                        assert listed == []
                        outcomes.append("as it was")
                # The blobs a kill left without a row go in the sweep after start.
                count = db.execute("SELECT count(*) FROM recordings").fetchone()[0]
                for _ in range(100):
                    if len(_files(data / "blobs")) == count:
                        break
                    await asyncio.sleep(0.1)
                assert len(_files(data / "blobs")) == count
        finally:
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        db.close()
    assert _files(data / "tmp", ".partial") == []
    assert json.loads(run_cli(data, "audit", "verify", check=True).stdout)["ok"]
    # Kills fell before commits (and, where the machine kept pace, after them).
    assert "as it was" in outcomes, outcomes
    print(f"\nredaction killed at {trials} moments over its {takes:.2f} s: {outcomes} "
          f"({answered} answered before the kill)")
