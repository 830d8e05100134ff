"""7. Purge: time to purge 10,000 due recordings out of a catalog of 200,000, and the cost
of a run with nothing due against the catalog's size (20,000 vs 200,000). With
``--due-large N``, also the rate of a run with N due in the same catalog size, which must
keep the rate of the smaller run (issue: millions of calls).

The catalog is seeded through the storage layer (uploading 200,000 recordings over HTTP
would measure ingest, not purge); each due recording has a real encrypted blob to delete.

Run: .venv/bin/python bench/purge.py [--total N --due N] [--due-large N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from recordings_service import retention
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.clock import system_clock
from recordings_service.config import load_config
from recordings_service.services import Services, open_services
from storage.blobstore.base import new_blob_name
from storage.encrypted_blob import EncryptingWriter
from storage.keyring import new_dek
from storage.schema import recording_purposes, recordings

NOW = datetime.now(UTC)


async def seed(svc: Services, total: int, due: int) -> None:
    batch: list[dict[str, object]] = []
    purposes: list[dict[str, object]] = []
    for i in range(total):
        rid = f"rec_bench{i:08d}"
        is_due = i < due
        started = NOW - timedelta(days=400 if is_due else 10)
        blob = None
        wrapped = b"\x00" * 60
        version = svc.keyring.current_version()
        if is_due:
            dek = new_dek()
            version, wrapped = svc.keyring.wrap(dek, rid)
            blob = new_blob_name()
            writer = EncryptingWriter(await svc.blobs.open_writer(blob), dek, rid)
            await writer.write(os.urandom(2000))
            await writer.commit()
        batch.append({
            "id": rid, "call_id": f"call-{i}", "customer_id": f"c-{i % 5000}",
            "started_at": started, "content_type": "audio/wav", "size_bytes": 2000,
            "sha256": "0" * 64, "blob_name": blob, "wrapped_dek": wrapped,
            "key_version": version, "state": "active", "created_at": started,
            "purge_at": started + timedelta(days=180)})
        purposes.append({"recording_id": rid, "purpose": "training", "legal_basis": "consent",
                         "expires_at": started + timedelta(days=180)})
        if len(batch) == 5000:
            async with svc.database.write() as conn:
                await conn.execute(insert(recordings), batch)
                await conn.execute(insert(recording_purposes), purposes)
            batch, purposes = [], []
    if batch:
        async with svc.database.write() as conn:
            await conn.execute(insert(recordings), batch)
            await conn.execute(insert(recording_purposes), purposes)


async def timed_run(svc: Services) -> tuple[float, int]:
    started = time.perf_counter()
    run = await retention.run_purge(svc, retention.RETENTION_ACTOR, SYSTEM_ORIGIN, False)
    return time.perf_counter() - started, len(run["purged"])


async def catalog(total: int, due: int) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory(prefix="bench-purge-", dir="/work") as data:
        config = load_config(environ={}, data_dir=data).with_overrides(scheduler_enabled=False)
        async with open_services(config, system_clock) as svc:
            await seed(svc, total, due)
            elapsed, purged = await timed_run(svc)
            empty = min([(await timed_run(svc))[0] for _ in range(5)])
    return elapsed, purged, empty


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--due-large", type=int, default=0)
    args = parser.parse_args()
    elapsed, purged, empty_big = asyncio.run(catalog(args.total, args.due))
    _, _, empty_small = asyncio.run(catalog(args.total // 10, 0))
    rate = purged / elapsed
    print(f"purged {purged} of {args.total} in {elapsed:.1f} s")
    print(f"7. purge rate: {rate:.0f} recordings/s (target >= 500/s)"
          f"{'  [target met]' if rate >= 500 else '  [TARGET MISSED]'}")
    print(f"7. run with nothing due: {empty_small * 1000:.1f} ms at {args.total // 10} vs "
          f"{empty_big * 1000:.1f} ms at {args.total} recordings = "
          f"{empty_big / empty_small:.2f}x (target: independent of catalog size)")
    if args.due_large:
        elapsed_large, purged_large, _ = asyncio.run(catalog(args.total, args.due_large))
        rate_large = purged_large / elapsed_large
        print(f"purge rate with {purged_large} due: {rate_large:.0f}/s against {rate:.0f}/s "
              f"with {purged} due = {rate_large / rate:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
