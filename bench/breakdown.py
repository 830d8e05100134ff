"""Where one audited 64 KiB access spends its time, step by step, in one process.

Each step is the function the request path calls, run alone many times on a real data
directory (SQLite, filesystem blobs), median in microseconds; then whole requests through
aiohttp's test client for the total, and /healthz for the bare framework. Single-threaded
and sequential: this is the cost of one request, not the throughput under load.

Run: .venv/bin/python bench/breakdown.py [--rounds N] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestClient, TestServer
from common import MB, wav_bytes

from recordings_service import access, auditing, policy
from recordings_service.app import create_app
from recordings_service.appkeys import SERVICES
from recordings_service.auditing import Origin
from recordings_service.auth import authenticate, create_token
from recordings_service.clock import system_clock
from recordings_service.config import load_config
from storage.encrypted_blob import DecryptingReader

RANGE = 65536


async def timed(rounds: int, step: Callable[[], Awaitable[object]]) -> float:
    """Median microseconds of ``step``."""
    for _ in range(min(50, rounds)):
        await step()
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        await step()
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1e6


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-breakdown-", dir="/work") as root:
        config = load_config(data_dir=str(Path(root) / "data"), environ={}).with_overrides(
            scheduler_enabled=False)
        app = create_app(config, system_clock)
        async with TestClient(TestServer(app)) as client:
            svc = app[SERVICES]
            now = svc.clock()
            ingest = await create_token(svc.database, "ingest", ["ingest"], now)
            token = await create_token(svc.database, "supervisor", ["supervisor"], now)
            audio = wav_bytes(5 * MB, 1)
            response = await client.put(
                "/v1/calls/b-1/recording?started_at=2026-11-24T09:00:00Z&purpose=training",
                data=audio, headers={"Authorization": f"Bearer {ingest}"})
            rid = (await response.json())["id"]
            actor = await authenticate(svc.database, token, now)
            assert actor is not None
            origin = Origin("127.0.0.1", None)
            rec = await access._get(svc, rid)
            assert rec is not None
            dek = await svc.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rid)
            offset = 2 * MB

            async def read_range() -> None:
                async with DecryptingReader(svc.blobs, rec.blob_name, dek, rid,
                                            rec.size_bytes) as reader:
                    async for _ in reader.iter_range(offset, offset + RANGE - 1):
                        pass

            async def policy_check() -> None:
                policy.check_access(actor.roles, "training", policy.states_of(rec),
                                    rec.restricted, svc.config.purposes, svc.clock())

            async def audit_entry() -> None:
                await auditing.record(svc, auditing.event(
                    actor, origin, "stream", "allowed", recording_id=rid, purpose="training",
                    detail={"method": "GET", "range": "bytes=0-65535"}))

            headers = {"Authorization": f"Bearer {token}", "Access-Purpose": "training",
                       "Range": f"bytes={offset}-{offset + RANGE - 1}"}

            async def whole_request() -> None:
                async with client.get(f"/v1/recordings/{rid}/audio", headers=headers) as r:
                    assert r.status == 206
                    await r.read()

            async def healthz() -> None:
                async with client.get("/healthz") as r:
                    await r.read()

            steps = [
                ("auth: token lookup (read transaction)",
                 lambda: authenticate(svc.database, token, svc.clock())),
                ("recording + purposes + holds (read transaction)", lambda: access._get(svc, rid)),
                ("policy check", policy_check),
                ("audit entry: build, hash, Merkle, durable commit", audit_entry),
                ("key unwrap", lambda: svc.keyring.unwrap_fresh(rec.wrapped_dek,
                                                                rec.key_version, rid)),
                ("open blob + read and decrypt 64 KiB", read_range),
            ]
            results = [(name, await timed(rounds, step)) for name, step in steps]
            total = await timed(rounds, whole_request)
            bare = await timed(rounds, healthz)
    parts = sum(us for _, us in results)
    width = max(len(name) for name, _ in results) + 2
    print(f"{'step':<{width}} median µs")
    for name, us in results:
        print(f"{name:<{width}} {us:8.0f}")
    print(f"{'sum of the steps':<{width}} {parts:8.0f}")
    print(f"{'whole request through aiohttp (client in-process)':<{width}} {total:8.0f}")
    print(f"{'/healthz through aiohttp (client in-process)':<{width}} {bare:8.0f}")
    print(f"{'the rest: HTTP, middlewares, response, client':<{width}} "
          f"{total - parts:8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main(args.rounds))
    else:
        asyncio.run(main(args.rounds))
