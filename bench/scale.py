"""Scale: what each user-facing operation costs at 20,000 recordings and at a large size
(--large, 1,000,000 by default; 10,000,000 where the disk allows), with the ratio, on SQLite
and, given --postgres URL, on PostgreSQL. Targets: every search, page and retention figure
within 1.5x; incremental verification after 1,000 new entries within 1.5x.

The catalog is seeded through the storage layer (tests/catalog_seed.py: calls at a steady
5,000 a day, 500 agents, 40 queues, a customer per five calls; audit entries half the
recordings, at most 1,000,000); the service then runs in this process on a real socket and
each figure is the median of repeated requests, as a client sees them.

Run: .venv/bin/python bench/scale.py [--large N] [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp.test_utils import TestClient, TestServer

from recordings_service import calls, jobs, people, retention
from recordings_service.app import create_app
from recordings_service.appkeys import SERVICES
from recordings_service.auth import create_token
from recordings_service.config import load_config
from recordings_service.services import open_services
from tests import catalog_seed as seed
from tests.audio import wav_tone

SMALL = 20_000
PASSWORD = "plum-orchard-vinegar-42"
NOW = seed.NEWEST + timedelta(days=1)


def clock() -> datetime:
    # Time as the seeded catalog knows it, moving on: checkpoints and sessions need it to.
    return NOW + timedelta(seconds=time.monotonic() - _T0)


_T0 = time.monotonic()


async def median_ms(step: Callable[[int], Awaitable[object]], rounds: int = 15) -> float:
    await step(rounds)  # warm
    took = []
    for i in range(rounds):
        started = time.perf_counter()
        await step(i)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


async def _ok(response: Any) -> Any:
    async with response:
        assert response.status < 300, (response.status, await response.text())
        if response.content_type == "application/json":
            return await response.json()
        return await response.read()


async def _reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


async def measure(size: int, root: Path, pg_url: str | None) -> dict[str, float]:
    env = {"RECORDINGS_DATABASE_URL": pg_url} if pg_url else {}
    if pg_url:
        await _reset_postgres(pg_url)
    config = load_config(environ=env, data_dir=str(root / "data")).with_overrides(
        scheduler_enabled=False)
    entries = min(size // 2, 1_000_000)
    seeded = time.perf_counter()
    async with open_services(config, clock) as svc:
        await retention.apply_configured_retention(svc)  # as a first start does
        tokens = {role: await create_token(svc.database, role, [role], clock())
                  for role in ("supervisor", "compliance", "auditor", "ingest")}
        await people.create_user(svc.database, "maria", ["supervisor", "compliance",
                                                         "auditor"], PASSWORD, clock())
        await seed.seed_recordings(svc.database, size, NOW)
        await seed.seed_audit(svc.database, entries, NOW)
        await seed.seed_calls(svc.database, size)
        await seed.analyze(svc.database)
    print(f"  seeded {size:,} recordings and {entries:,} audit entries in "
          f"{time.perf_counter() - seeded:.0f} s", flush=True)

    figures: dict[str, float] = {}
    started = time.perf_counter()
    app = create_app(config, clock)
    async with TestClient(TestServer(app)) as client:
        figures["serve start (s)"] = time.perf_counter() - started
        svc = app[SERVICES]

        def bearer(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[role]}"}

        day = seed.started_of(3 * seed.CALLS_PER_DAY // 2).date()

        async def api_agent_day(i: int) -> None:
            await _ok(await client.get("/v1/recordings", headers=bearer("supervisor"), params={
                "agent_id": seed.agent_of(i * 7), "started_after": f"{day}T00:00:00Z",
                "started_before": f"{day + timedelta(days=1)}T00:00:00Z"}))
        figures["API search agent + one day"] = await median_ms(api_agent_day)

        cursor = None
        for _ in range(48):
            page = await _ok(await client.get("/v1/recordings", headers=bearer("supervisor"),
                                              params={"limit": "20",
                                                      **({"cursor": cursor} if cursor else {})}))
            cursor = page["next_cursor"]
        assert cursor is not None

        async def api_page_49(_: int) -> None:
            await _ok(await client.get("/v1/recordings", headers=bearer("supervisor"), params={
                "limit": "20", "cursor": cursor}))
        figures["API search, page 49 by cursor"] = await median_ms(api_page_49)

        async def api_customer(i: int) -> None:
            await _ok(await client.get("/v1/recordings", headers=bearer("supervisor"),
                                       params={"customer_id": seed.customer_of(i * 50)}))
        figures["API search by customer"] = await median_ms(api_customer)

        async def api_one(i: int) -> None:
            await _ok(await client.get(f"/v1/recordings/rec_seed{i * 13:010d}",
                                       headers=bearer("supervisor")))
        figures["API GET one recording"] = await median_ms(api_one)

        signed_in = await client.post("/v1/session", json={"name": "maria",
                                                            "password": PASSWORD})
        assert signed_in.status == 200

        async def console(path: str) -> Callable[[int], Awaitable[object]]:
            async def step(_: int) -> None:
                await _ok(await client.get(path))
            return step
        figures["console recordings list"] = await median_ms(await console("/recordings"))
        figures["console search agent + day"] = await median_ms(await console(
            f"/recordings?agent_id=A-007&from={day}&to={day}"))
        figures["console search by customer"] = await median_ms(await console(
            "/recordings?customer_id=C-00000042"))
        figures["console search agent prefix, 10 agents"] = await median_ms(await console(
            "/recordings?agent_id=a-00"))
        figures["console longest calls first"] = await median_ms(await console(
            "/recordings?sort=-duration"))
        figures["console agent prefix + day, longest first"] = await median_ms(await console(
            f"/recordings?agent_id=a-00&from={day}&to={day}&sort=-duration"))
        figures["console compliance page"] = await median_ms(await console("/compliance"),
                                                             rounds=7)

        # Coverage reads a period's call records: a day's here, whatever the catalog holds.
        period = {"from": f"{day}T00:00:00Z", "to": f"{day + timedelta(days=1)}T00:00:00Z"}

        async def coverage(_: int) -> None:
            await _ok(await client.get("/v1/coverage", params=period,
                                       headers=bearer("supervisor")))
        figures["API coverage of a day"] = await median_ms(coverage)
        for status in ("missing", "unmatched"):
            async def listed(_: int, status: str = status) -> None:
                await _ok(await client.get("/v1/calls", params={**period, "status": status},
                                           headers=bearer("supervisor")))
            figures[f"API calls {status}, a day"] = await median_ms(listed)

        async def reconcile(_: int) -> None:
            await calls.reconcile(svc)
        figures["reconcile, a day's gauges"] = await median_ms(reconcile, rounds=5)

        # A redaction's proof reads the entries between the upload and the first
        # checkpoint after it, whatever the log holds before.
        uploaded = await _ok(await client.put(
            "/v1/calls/bench-redaction/recording", data=wav_tone(30.0),
            params={"started_at": f"{day}T10:00:00Z", "purpose": "legal_protection"},
            headers=bearer("ingest")))
        path = f"/v1/recordings/{uploaded['id']}/redactions"
        redacted = await _ok(await client.post(path, json={
            "spans": [{"start_ms": 5_000, "end_ms": 9_000}], "reason": "pci"},
            headers=bearer("compliance")))

        async def redaction_proof(_: int) -> None:
            await _ok(await client.get(f"{path}/{redacted['id']}/proof",
                                       headers=bearer("auditor")))
        figures["API redaction proof"] = await median_ms(redaction_proof)

        async def dry_run(_: int) -> None:
            await _ok(await client.post("/v1/purge-runs", json={"dry_run": True},
                                        headers=bearer("compliance")))
        figures["purge dry run"] = await median_ms(dry_run, rounds=5)
        purged = time.perf_counter()
        run = await _ok(await client.post("/v1/purge-runs", json={"dry_run": False},
                                          headers=bearer("compliance")))
        figures["purge, real (s)"] = time.perf_counter() - purged
        figures["purged"] = len(run["purged"])
        figures["purge, nothing due"] = await median_ms(dry_run, rounds=5)
        figures["tombstone row bytes"] = await _tombstone_bytes(svc.database)
        figures["catalog bytes per recording"] = await _table_bytes(
            svc.database, ("recordings", "recording_purposes")) / size
        figures["catalog bytes per audit entry"] = await _table_bytes(
            svc.database, ("audit_entries",)) / (entries + 1)

        verified = time.perf_counter()
        report = await _ok(await client.get("/v1/audit/verify", params={"full": "true"},
                                            headers=bearer("auditor")))
        figures["audit verify, full (s)"] = time.perf_counter() - verified
        assert report["ok"], report

        async def healthz() -> float:
            began = time.perf_counter()
            await _ok(await client.get("/healthz"))
            return time.perf_counter() - began

        idle = statistics.median([await healthz() for _ in range(50)])
        waits: list[float] = []
        verifying = asyncio.ensure_future(client.get("/v1/audit/verify",
                                                     params={"full": "true"},
                                                     headers=bearer("auditor")))
        while not verifying.done():
            waits.append(await healthz())
            await asyncio.sleep(0.02)
        (await verifying).release()
        figures["/healthz during a full verification, p50 / idle"] = (
            statistics.median(waits) / idle)
        figures["/healthz during a full verification, max (ms)"] = max(waits) * 1000

        async def incremental(_: int) -> None:
            await seed.seed_audit(svc.database, 1_000, clock())
            await jobs.checkpoint(svc)  # the seeded entries are back in time
            report = await _ok(await client.get("/v1/audit/verify",
                                                headers=bearer("auditor")))
            assert report["ok"] and not report["full"], report
        # Each round appends 1,000 entries (not timed apart: a write of 1,000 is the same
        # at any size) and verifies what is new.
        figures["audit verify after 1,000 new entries"] = await median_ms(incremental,
                                                                          rounds=5)
        if not pg_url:
            await _backups(svc, root, figures)
    return figures


async def _backups(svc: Any, root: Path, figures: dict[str, float]) -> None:
    """Backup's own cost: the catalog walk and the blob list (every seeded recording is
    given a blob name; the blobs themselves are absent, so nothing is copied and each is
    counted missing: copying is bench/ingest.py's and the disk's business)."""
    from sqlalchemy import update

    from recordings_service import backup
    from storage.schema import recordings

    async with svc.database.write() as conn:
        await conn.execute(update(recordings).where(recordings.c.state == "active")
                           .values(blob_name=recordings.c.id))
    tracemalloc.start()
    await backup.backup(svc, root / "backup")
    figures["backup peak Python memory (MB)"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    again = time.perf_counter()
    await backup.backup(svc, root / "backup")
    figures["backup again at once, incremental (s)"] = time.perf_counter() - again
    again = time.perf_counter()
    await backup.backup(svc, root / "backup", full=True)
    figures["backup again at once, --full (s)"] = time.perf_counter() - again
    # What the issue sets aside: SQLite's own online copy of the catalog, alone.
    copy = time.perf_counter()
    await asyncio.to_thread(backup.snapshot_sqlite, svc.config.data_dir / backup.CATALOG,
                            root / "catalog-copy.sqlite3")
    figures["of which the catalog copy alone (s)"] = time.perf_counter() - copy
    (root / "catalog-copy.sqlite3").unlink()


async def _tombstone_bytes(database: Any) -> float:
    """What a tombstone's row and its purposes' rows hold, on average (their columns'
    stored lengths; each index adds its key columns again)."""
    from sqlalchemy import text

    async with database.read() as conn:
        row = (await conn.execute(text(
            "SELECT avg(coalesce(length(id), 0) + coalesce(length(sha256), 0) "
            "+ coalesce(length(deletion_receipt), 0) + coalesce(length(purge_reason), 0) "
            "+ coalesce(length(subject_ref), 0) + coalesce(length(content_type), 0) "
            "+ coalesce(length(state), 0) + 8 * 6) FROM recordings "
            "WHERE state = 'purged' AND deletion_receipt IS NOT NULL"))).scalar()
        purposes = (await conn.execute(text(
            "SELECT avg(length(recording_id) + length(purpose) + length(legal_basis) + 16) "
            "FROM recording_purposes"))).scalar()
    return float(row or 0) + 2 * float(purposes or 0)


async def _table_bytes(database: Any, tables: tuple[str, ...]) -> float:
    """Bytes ``tables`` take with their indexes (SQLite's dbstat, PostgreSQL's sizes)."""
    from sqlalchemy import text

    async with database.read() as conn:
        if database.dialect == "sqlite":
            rows = (await conn.execute(text(
                "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
                "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name"))).all()
            return float(sum(size for table, size in rows if table in tables))
        return float(sum([(await conn.execute(text(
            f"SELECT pg_total_relation_size('{table}')"))).scalar() for table in tables]))


RATIO_TARGETS = {
    "API search agent + one day": 1.5, "API search, page 49 by cursor": 1.5,
    "API search by customer": 1.5, "API GET one recording": 1.5,
    "console recordings list": 1.5, "console search agent + day": 1.5,
    "console search by customer": 1.5, "console compliance page": 1.5,
    "console search agent prefix, 10 agents": 1.5, "console longest calls first": 1.5,
    "console agent prefix + day, longest first": 1.5,
    "purge dry run": 1.5, "purge, nothing due": 1.5, "serve start (s)": 1.5,
    "audit verify after 1,000 new entries": 1.5,
    "API coverage of a day": 1.5, "API calls missing, a day": 1.5,
    "API calls unmatched, a day": 1.5, "reconcile, a day's gauges": 1.5,
    "API redaction proof": 1.5,
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose public schema may be "
                                           "dropped (the bench's own database)")
    args = parser.parse_args()
    for name, pg_url in (("SQLite", None), ("PostgreSQL", args.postgres)):
        if name == "PostgreSQL" and not pg_url:
            continue
        results = []
        for size in (SMALL, args.large):
            print(f"{name}, {size:,} recordings:", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-scale-", dir="/work") as root:
                results.append(await measure(size, Path(root), pg_url))
        small, large = results
        print(f"\n{name}: {SMALL:,} vs {args.large:,} recordings")
        for key in small:
            ratio = large[key] / small[key] if small[key] else float("nan")
            target = RATIO_TARGETS.get(key)
            verdict = "" if target is None else (
                "  [target met]" if ratio <= target else "  [TARGET MISSED]")
            print(f"  {key}: {small[key]:.2f} vs {large[key]:.2f} = {ratio:.2f}x{verdict}")
        print(flush=True)


if __name__ == "__main__":
    asyncio.run(main())
