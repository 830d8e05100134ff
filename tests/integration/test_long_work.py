"""Long work does not hold up anyone else: while an auditor verifies a large log in full
or a purge run works through thousands of recordings, /healthz and an audited range keep
answering.

The client runs on the service's own event loop, so a probe's latency is how long the loop
was held: a loop held for the whole verification shows as one probe answered after it.
Nothing here is a wall-clock limit: each bound is a share of the long work's own duration
(a probe's, plus the longest a bare fsync on the same disk took meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from recordings_service import jobs
from storage.schema import recordings
from tests import catalog_seed as seed
from tests.audio import wav_tone
from tests.conftest import Api


class _LoopWatchdog:
    """Samples the loop thread's stack whenever the loop has not ticked for a while, so a
    failure names the code that held it; and, beside it, times a small fsync on the
    catalog's disk every 50 ms: the baseline for what the disk itself stalls everyone by.
    (A probe that writes an audit entry waits for a commit's fsync: a CI run saw one wait
    11 s, which no run here reproduced, on a shared machine's disk.)"""

    def __init__(self, directory: Path) -> None:
        self._loop_thread = threading.get_ident()
        self._ticked = time.perf_counter()
        self._stop = threading.Event()
        self.samples: collections.Counter[str] = collections.Counter()
        self.disk_stall = 0.0
        self._probe_file = directory / "disk-stall-probe"
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._time_the_disk, daemon=True)]

    def tick(self) -> None:
        self._ticked = time.perf_counter()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            if time.perf_counter() - self._ticked > 0.2:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-12:]
                    self.samples["".join(traceback.format_list(stack))] += 1

    def _time_the_disk(self) -> None:
        fd = os.open(self._probe_file, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while not self._stop.wait(0.05):
                began = time.perf_counter()
                os.pwrite(fd, os.urandom(4096), 0)
                os.fsync(fd)
                self.disk_stall = max(self.disk_stall, time.perf_counter() - began)
        finally:
            os.close(fd)
            self._probe_file.unlink()

    def __enter__(self) -> _LoopWatchdog:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def report(self) -> str:
        disk = f"a bare fsync on its disk took up to {self.disk_stall:.2f} s"
        if not self.samples:
            return f"the loop was never held past 0.2 s; {disk}"
        stack, count = self.samples.most_common(1)[0]
        return f"{disk}; the loop was held, {count} samples (50 ms apart) in:\n{stack}"


async def _probe_while(api: Api, long_work: Awaitable[object], recording_id: str,
                       ) -> tuple[float, list[float], float, float, str]:
    """(how long ``long_work`` took, the latency of each probe answered meanwhile, the
    longest the event loop was held, the longest a bare fsync took meanwhile, where the
    loop was held)."""
    with _LoopWatchdog(api.services.config.data_dir) as watchdog:
        took, latencies, held = await _probes(api, long_work, recording_id, watchdog)
    return took, latencies, held, watchdog.disk_stall, watchdog.report()


async def _probes(api: Api, long_work: Awaitable[object], recording_id: str,
                  watchdog: _LoopWatchdog) -> tuple[float, list[float], float]:
    probes: list[Callable[[], Awaitable[object]]] = [
        lambda: api.client.get("/healthz"),
        lambda: api.audio(recording_id, "training", "supervisor",
                          headers={"Range": "bytes=0-1023"}),
    ]
    latencies: list[float] = []
    held = 0.0

    async def watch_the_loop() -> None:
        nonlocal held
        while True:
            before = time.perf_counter()
            watchdog.tick()
            await asyncio.sleep(0.005)
            held = max(held, time.perf_counter() - before - 0.005)

    watcher = asyncio.ensure_future(watch_the_loop())
    began = time.perf_counter()
    work = asyncio.ensure_future(long_work)
    i = 0
    while not work.done():
        sent = time.perf_counter()
        response = await probes[i % 2]()
        assert response.status in (200, 206), response.status  # type: ignore[attr-defined]
        response.release()  # type: ignore[attr-defined]
        if not work.done():
            latencies.append(time.perf_counter() - sent)
        i += 1
        await asyncio.sleep(0.01)
    await work
    took = time.perf_counter() - began
    watcher.cancel()
    return took, latencies, held


def _assert_not_held(took: float, latencies: list[float], held: float, disk_stall: float,
                     where: str) -> None:
    assert len(latencies) >= 5, f"{len(latencies)} probes answered in {took:.2f} s"
    # A probe may wait out what the disk stalled everyone by, not the long work.
    assert max(latencies) < took / 3 + disk_stall, (
        f"a probe waited {max(latencies):.2f} s of the work's {took:.2f} s; {where}")
    assert held < took / 3, (
        f"the loop was held {held:.2f} s of the work's {took:.2f} s; {where}")
    print(f"\n{len(latencies)} probes answered in {took:.2f} s, the slowest in "
          f"{max(latencies) * 1000:.0f} ms; the loop held at most {held * 1000:.0f} ms; {where}")


async def test_a_full_verification_of_a_large_log_holds_up_nobody(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.5))
    await seed.seed_audit(api.services.database, 50_000, api.clock())
    await jobs.checkpoint(api.services)  # seeded back in time: signed as the service would

    async def verify() -> None:
        response = await api.client.get("/v1/audit/verify", params={"full": "true"},
                                        headers=api.auth("auditor"))
        assert response.status == 200
        assert (await response.json())["ok"] is True

    _assert_not_held(*await _probe_while(api, verify(), rec["id"]))


async def test_a_purge_of_thousands_holds_up_nobody(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.5))
    await seed.seed_recordings(api.services.database, 8_000, api.clock())
    async with api.services.database.write() as conn:
        await conn.execute(update(recordings).where(recordings.c.id.like("rec_seed%"),
                                                    recordings.c.state == "active")
                           .values(purge_at=api.clock() - timedelta(days=1)))

    async def purge() -> None:
        response = await api.client.post("/v1/purge-runs", json={"dry_run": False},
                                         headers=api.auth("compliance"))
        assert response.status in (200, 201)
        assert len((await response.json())["purged"]) > 7_900

    _assert_not_held(*await _probe_while(api, purge(), rec["id"]))
