"""The audit archive (issue: millions of calls, item 4): what moving old entries out of the
catalog into tiles costs, and what reading them from there costs against the catalog, in
one run on one stack (SQLite + filesystem, or PostgreSQL with ``--postgres URL``).

Seeds N chained entries (100 days old) through the storage layer, then prints:
  - a full verification with every entry in the catalog,
  - the archive run (entries per second),
  - a full verification with every entry in the tiles, and the ratio to the first,
  - an incremental verification of 1,000 new entries (cost of what is new only),
  - the offline check of the tiles (``audit verify-tiles``),
  - a page of ``GET /v1/audit?archived=true`` filtered by actor against the same page from
    the catalog, and the catalog's rows and the tiles' bytes.

Run: .venv/bin/python bench/audit_archive.py [--entries N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from recordings_service import jobs
from recordings_service.config import load_config
from recordings_service.services import Services, open_services
from storage import audit_archive, audit_log
from storage.schema import audit_entries
from tests import catalog_seed as seed
from tests.conftest import reset_postgres


def _clock() -> datetime:
    return datetime.now(UTC)


async def _timed(what: str, coro: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = await coro  # type: ignore[misc]
    seconds = time.perf_counter() - start
    print(f"  {what}: {seconds * 1000:,.0f} ms", flush=True)
    return seconds, result


async def _catalog_rows(svc: Services) -> int:
    async with svc.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(audit_entries)))
                   .scalar_one())


async def _catalog_page(svc: Services, flt: audit_log.AuditFilter) -> object:
    async with svc.database.read() as conn:
        return await audit_log.list_entries(conn, flt, 0, 50)


async def main(entries: int, postgres: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {}
        if postgres:
            await reset_postgres(postgres)
            env["RECORDINGS_DATABASE_URL"] = postgres
        config = load_config(environ=env, data_dir=tmp).with_overrides(scheduler_enabled=False)
        async with open_services(config, _clock) as svc:
            print(f"stack: {'PostgreSQL' if postgres else 'SQLite'} + filesystem; seeding "
                  f"{entries:,} entries", flush=True)
            await seed.seed_audit(svc.database, entries, _clock() - timedelta(days=100))
            await jobs.checkpoint(svc)
            flt = audit_log.AuditFilter(actor="supervisor-7")
            page_catalog, _ = await _timed("a page by actor, from the catalog",
                                           _catalog_page(svc, flt))
            rows_before = await _catalog_rows(svc)
            catalog_full, _ = await _timed("full verification, entries in the catalog",
                                           jobs.verify_audit(svc, full=True))
            archiving, result = await _timed("archive run (entries older than 30 days)",
                                             jobs.archive_audit(svc, 30))
            moved = result["moved"]  # type: ignore[index]
            print(f"    moved {moved:,} entries: {moved / archiving:,.0f} entries/s")
            tiles_full, report = await _timed("full verification, entries in the tiles",
                                              jobs.verify_audit(svc, full=True))
            assert report.ok, report.problems  # type: ignore[attr-defined]
            print(f"    ratio tiles / catalog: {tiles_full / catalog_full:.2f}")
            await seed.seed_audit(svc.database, 1_000, _clock())
            await jobs.checkpoint(svc)
            await _timed("incremental verification of 1,000 new entries",
                         jobs.verify_audit(svc))
            _, report = await _timed("offline check of the tiles (verify-tiles)",
                                           audit_log.verify_tiles(
                                               svc.tiles, svc.signing_key.public_key()))
            assert report.ok  # type: ignore[attr-defined]
            async with svc.database.read() as conn:
                archive = await audit_archive.current(conn, svc.signing_key.public_key(),
                                                      config.audit_origin)
            page_tiles, _ = await _timed(
                "a page by actor, from the archive (archived=true, 4,096 entries read)",
                audit_log.list_archived(svc.tiles, archive, flt, 0, 50))
            print(f"    ratio archive page / catalog page: {page_tiles / page_catalog:.1f}")
            rows_after = await _catalog_rows(svc)
            tile_bytes = sum(p.stat().st_size for p in (Path(tmp) / "audit-tiles").rglob("*")
                             if p.is_file())
            print(f"  catalog rows: {rows_before:,} before, {rows_after:,} after; tiles: "
                  f"{tile_bytes / 1e6:,.1f} MB ({tile_bytes / max(moved, 1):,.0f} B/entry)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL (its schema is dropped)")
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.postgres))
