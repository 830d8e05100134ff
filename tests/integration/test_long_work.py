"""Long work does not hold up anyone else: while an auditor verifies a large log in full
or a purge run works through thousands of recordings, /healthz and an audited range keep
answering.

The client runs on the service's own event loop, so a probe's latency is how long the loop
was held: a loop held for the whole verification shows as one probe answered after it.
Nothing here is a wall-clock limit: each bound is a share of the long work's own duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import update

from recordings_service import jobs
from storage.schema import recordings
from tests import catalog_seed as seed
from tests.audio import wav_tone
from tests.conftest import Api


async def _probe_while(api: Api, long_work: Awaitable[object], recording_id: str,
                       ) -> tuple[float, list[float], float]:
    """(how long ``long_work`` took, the latency of each probe answered meanwhile, the
    longest the event loop was held)."""
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


def _assert_not_held(took: float, latencies: list[float], held: float) -> None:
    assert len(latencies) >= 5, f"{len(latencies)} probes answered in {took:.2f} s"
    assert max(latencies) < took / 3, (
        f"a probe waited {max(latencies):.2f} s of the work's {took:.2f} s")
    assert held < took / 3, f"the loop was held {held:.2f} s of the work's {took:.2f} s"
    print(f"\n{len(latencies)} probes answered in {took:.2f} s, the slowest in "
          f"{max(latencies) * 1000:.0f} ms; the loop held at most {held * 1000:.0f} ms")


async def test_a_full_verification_of_a_large_log_holds_up_nobody(api: Api) -> None:
    rec = await api.uploaded(wav_tone(0.5))
    await seed.seed_audit(api.services.database, 50_000, api.clock())
    await jobs.checkpoint(api.services)  # seeded back in time: signed as the service would

    async def verify() -> None:
        response = await api.client.get("/v1/audit/verify", params={"full": "true"},
                                        headers=api.auth("auditor"))
        assert response.status == 200
        assert (await response.json())["ok"] is True

    took, latencies, held = await _probe_while(api, verify(), rec["id"])
    _assert_not_held(took, latencies, held)


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

    took, latencies, held = await _probe_while(api, purge(), rec["id"])
    _assert_not_held(took, latencies, held)
