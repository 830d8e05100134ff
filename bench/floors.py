"""Per-request cost against its floors, measured in one run (performance round 3).

1. Audited access latency: one client, 64 KiB ranges at random offsets, p50 and p99,
   against the floor = the service's own /healthz p50 (one client) + a raw durable SQLite
   commit p50 of one audit-sized row (WAL, synchronous=FULL, on the same filesystem).
   Targets: p50 <= 2 x floor, p99 <= 3 x floor.
2. Audited accesses per second, 32 clients, against the service's own /healthz requests
   per second with 32 clients. Target: >= 0.5.

Run: .venv/bin/python bench/floors.py [--seconds N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MB, WORKERS, figure, service, wav_bytes, wrk
from streaming import cycle_lua

AUDIT_ROW = os.urandom(160).hex()  # about the size of an audit entry's canonical JSON


def durable_commit_ms(directory: str, count: int = 400) -> tuple[float, float]:
    """p50 and p99 of one INSERT + COMMIT, durable as the service commits its entries."""
    path = Path(directory) / "floor.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, at TEXT, entry TEXT, h BLOB)")
    took = []
    for i in range(count):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?, ?, ?)",
                   (i, "2026-11-26T07:00:00Z", AUDIT_ROW, os.urandom(32)))
        db.execute("COMMIT")
        took.append((time.perf_counter() - started) * 1000)
    db.close()
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    s = args.seconds
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-floor-", dir="/work") as scratch, \
            service(workers=args.workers, event_loop=args.event_loop) as svc:
        ids = [svc.upload(wav_bytes(5 * MB, seed), f"floor-{seed}") for seed in range(8)]
        os.sync()
        auth = {"Authorization": f"Bearer {svc.tokens['supervisor']}",
                "Access-Purpose": "training"}
        paths = [f"/v1/recordings/{rid}/audio" for rid in ids]
        ranged = cycle_lua(paths, 5 * MB)

        commit_p50, commit_p99 = durable_commit_ms(scratch)
        health_1 = wrk(svc.url + "/healthz", 1, s)
        access_1 = wrk(svc.url, 1, s, headers=auth, lua=ranged)
        health_32 = wrk(svc.url + "/healthz", 32, s, threads=2)
        access_32 = wrk(svc.url, 32, s, headers=auth, lua=ranged, threads=2)

        floor = health_1.p50_ms + commit_p50
        p50_ratio, p99_ratio = access_1.p50_ms / floor, access_1.p99_ms / floor
        lines.append(f"floors: /healthz p50 {health_1.p50_ms:.2f} ms (1 client), "
                     f"{health_32.requests_per_s:.0f}/s (32 clients); durable SQLite "
                     f"commit of one audit-sized row p50 {commit_p50:.2f} ms, "
                     f"p99 {commit_p99:.2f} ms; floor = {floor:.2f} ms")
        lines.append(figure("1. audited 64 KiB range, 1 client: p50 / floor",
                            f"{access_1.p50_ms:.2f} ms = {p50_ratio:.2f}x", "<= 2x",
                            p50_ratio <= 2))
        lines.append(figure("1. audited 64 KiB range, 1 client: p99 / floor",
                            f"{access_1.p99_ms:.2f} ms = {p99_ratio:.2f}x", "<= 3x",
                            p99_ratio <= 3))
        rps_ratio = access_32.requests_per_s / health_32.requests_per_s
        lines.append(figure("2. audited accesses/s, 32 clients / /healthz per s",
                            f"{access_32.requests_per_s:.0f}/s vs "
                            f"{health_32.requests_per_s:.0f}/s = {rps_ratio:.2f}",
                            ">= 0.5", rps_ratio >= 0.5))
        errors = health_1.errors + access_1.errors + health_32.errors + access_32.errors
        lines.append(f"errors (non-2xx, socket): {errors}; workers: {args.workers}; "
                     f"event loop: {args.event_loop}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
