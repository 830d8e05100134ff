"""Scheduled jobs (APScheduler 3, inside ``serve``); each is also a CLI command."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from recordings_service import auditing, calls, keys, retention, sessions
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.services import Services
from storage import audit_archive, audit_log, catalog, tlog_tiles
from storage.errors import AuditChainError, BlobLockedError
from storage.schema import audit_checkpoints

log = logging.getLogger(__name__)

SCHEDULER_KEY = web.AppKey("scheduler", AsyncIOScheduler)


async def checkpoint(services: Services) -> audit_log.Checkpoint:
    return await audit_log.make_checkpoint(
        services.database, services.signing_key, services.config.audit_origin,
        services.config.checkpoint_path, services.clock())


async def checkpoint_if_due(services: Services) -> audit_log.Checkpoint | None:
    """A checkpoint as soon as the log grew by ``checkpoint_every_entries`` or its oldest
    uncovered entry is ``checkpoint_max_delay_seconds`` old: the entries that could be cut
    or rewritten unnoticed are bounded by count and by age, not only by the interval."""
    async with services.database.read() as conn:
        uncovered, first_at = await audit_log.entries_since_checkpoint(conn)
    config = services.config
    too_old = first_at is not None and services.clock() - first_at >= timedelta(
        seconds=config.checkpoint_max_delay_seconds)
    if uncovered < config.checkpoint_every_entries and not too_old:
        return None
    return await checkpoint(services)


async def verify_audit(services: Services, full: bool = False,
                       progress: Callable[[int, int], None] = lambda _done, _total: None,
                       ) -> audit_log.VerifyReport:
    """The entries since the newest signed verification statement (all of them when
    ``full``), signing a new statement when they hold."""
    return await audit_log.verify(
        services.database, services.signing_key.public_key(), services.config.audit_origin,
        services.config.checkpoint_path, services.clock(),
        timedelta(seconds=services.config.stale_after_seconds), full=full,
        tiles=services.tiles, signing_key=services.signing_key, progress=progress)


ARCHIVE_ACTOR = Actor("system:audit", frozenset())


async def archive_audit(services: Services, after_days: int) -> dict[str, Any]:
    """Moves the entries older than ``after_days`` into the audit archive, in whole
    bundles of 256. Only entries that a verification has just found intact and that a
    signed checkpoint covers are moved; a log that does not verify moves nothing."""
    report = await verify_audit(services)
    if not report.ok:
        raise AuditChainError(f"the audit log does not verify (first bad entry "
                              f"{report.first_bad_seq}); nothing was archived")
    now = services.clock()
    async with services.database.read() as conn:
        archived = await audit_archive.archived_size(conn)
        covered = int((await conn.execute(select(func.max(audit_checkpoints.c.size))))
                      .scalar() or 0)
        last = await audit_archive.last_entry_before(
            conn, now - timedelta(days=after_days), archived, min(report.entries, covered))
    before, after = await audit_archive.archive(
        services.database, services.tiles, services.signing_key,
        services.config.audit_origin, last // tlog_tiles.WIDTH * tlog_tiles.WIDTH, now)
    result = {"archived_entries": after.size, "moved": after.size - before.size,
              "root_hash": after.root.hex(), "chain_hash": after.chain_hash.hex()}
    if after.size > before.size:
        await auditing.record(services, auditing.event(
            ARCHIVE_ACTOR, SYSTEM_ORIGIN, "audit_archive", "allowed",
            detail={"archived_entries": after.size, "moved": after.size - before.size}))
    return result


async def _archive(services: Services) -> None:
    days = services.config.audit_archive_after_days
    if days:
        result = await archive_audit(services, days)
        if result["moved"]:
            log.info("moved audit entries to the archive", extra={"count": result["moved"]})


# How often the uncovered entries are compared with checkpoint_every_entries and
# checkpoint_max_delay_seconds: three primary-key lookups.
DUE_CHECK_SECONDS = 1

# Far longer than any upload takes between its blob's commit and its row's.
ORPHAN_GRACE = timedelta(hours=1)


async def sweep_orphans(services: Services, grace: timedelta) -> int:
    """Deletes blobs no catalog row names (an upload that crashed before its commit).

    ``grace`` spares blobs young enough to belong to an upload still committing.
    """
    cutoff = services.clock() - grace
    candidates: list[str] = []
    removed = 0

    async def flush() -> int:
        async with services.database.read() as conn:
            known = await catalog.existing_blob_names(conn, candidates)
        orphans = [n for n in candidates if n not in known]
        deleted = 0
        for name in orphans:
            try:
                await services.blobs.delete(name)
                deleted += 1
            except BlobLockedError:
                pass  # noise under a write-once lock (its key was never stored): later
        candidates.clear()
        return deleted

    async for name, mtime in services.blobs.names():
        if mtime <= cutoff:
            candidates.append(name)
        if len(candidates) >= 500:
            removed += await flush()
    if candidates:
        removed += await flush()
    if removed:
        log.warning("removed orphan blobs", extra={"count": removed})
    return removed


def _guarded(services: Services, name: str,
             job: Callable[[Services], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """Runs ``job`` on one replica at a time: a replica that finds it running elsewhere
    (PostgreSQL advisory lock) skips this turn."""
    async def run() -> None:
        outcome = "ok"
        try:
            async with services.database.exclusive(name) as held:
                if held:
                    await job(services)
                else:
                    outcome = "elsewhere"
        except Exception:
            outcome = "error"
            log.exception("scheduled job failed", extra={"job": name})
        services.metrics.job_runs.labels(name, outcome).inc()
    return run


async def _purge(services: Services) -> None:
    await retention.run_purge(services, retention.RETENTION_ACTOR, SYSTEM_ORIGIN,
                              dry_run=False)


async def _rewrap(services: Services) -> None:
    await keys.rewrap(services)


async def sweep(services: Services) -> None:
    """The hourly clean-up while running: writes abandoned by processes that are gone
    (on S3, multipart uploads older than the store's grace: a replica cannot see another's
    processes), then blobs no catalog row names."""
    discarded = await services.blobs.discard_incomplete()
    if discarded:
        log.warning("discarded abandoned partial uploads", extra={"count": discarded})
    await sweep_orphans(services, grace=ORPHAN_GRACE)
    released = await retention.delete_kept_blobs(services)
    if released:
        log.info("deleted blobs of purged recordings whose lock lapsed",
                 extra={"count": released})


def start_scheduler(services: Services) -> AsyncIOScheduler:
    cfg = services.config
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(_guarded(services, "checkpoint", checkpoint), "interval",
                      seconds=cfg.checkpoint_interval_seconds, id="checkpoint",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "checkpoint", checkpoint_if_due), "interval",
                      seconds=DUE_CHECK_SECONDS, id="checkpoint_when_due",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "purge", _purge), "interval",
                      seconds=cfg.purge_interval_seconds, id="purge",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "rewrap", _rewrap), "interval",
                      seconds=cfg.rewrap_interval_seconds, id="rewrap",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "reconcile", calls.reconcile), "interval",
                      seconds=cfg.coverage_interval_seconds, id="reconcile",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "orphan_sweep", sweep), "interval",
                      hours=1, id="orphan_sweep", max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "audit_archive", _archive), "interval",
                      hours=24, id="audit_archive", max_instances=1, coalesce=True)
    scheduler.add_job(_guarded(services, "session_sweep", sessions.sweep), "interval",
                      minutes=15, id="session_sweep", max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
