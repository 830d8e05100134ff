"""The app factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime

from aiohttp import web

from recordings_service import jobs, retention
from recordings_service.api.openapi import openapi_document
from recordings_service.api.routes import add_routes
from recordings_service.appkeys import CLOCK, CONFIG, OPENAPI, SERVICES, UPLOAD_SLOTS
from recordings_service.clock import Clock, system_clock
from recordings_service.config import Config
from recordings_service.console.routes import setup as setup_console
from recordings_service.middlewares import (
    DRAINING,
    IN_FLIGHT,
    InFlight,
    authentication,
    common_headers,
    request_context,
)
from recordings_service.services import Services, open_services
from recordings_service.upload_slots import UploadSlots
from storage.faults import is_disk_full

log = logging.getLogger("recordings_service.http")

EXTRA_WORKER = web.AppKey("extra_worker", bool)


class DataDirLock:
    """One ``serve`` per filesystem data directory: startup cleans its temporary files."""

    def __init__(self, path: os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RuntimeError("another recordings-service serve uses this data directory") \
                from None

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with open_services(config, app[CLOCK]) as services:
        if app[EXTRA_WORKER]:
            # One of server.workers: the first process holds the data directory, cleaned
            # it up before starting us and runs the scheduled jobs.
            app[SERVICES] = services
            yield
            return
        lock = DataDirLock(config.data_dir / "serve.lock")
        try:
            # With replicas on one catalog, one of them at a time does this; the others
            # serve meanwhile (and their uploads are safe from it: see the grace below).
            started = services.clock()
            async with services.database.exclusive("startup") as held:
                if held:
                    await _recover(services)
            await _checkpoint_if_possible(services)
            app[SERVICES] = services
            if config.scheduler_enabled:
                app[jobs.SCHEDULER_KEY] = jobs.start_scheduler(services)
            # Walking every blob takes as long as the store is large: it runs while the
            # service serves. Blobs older than this start cannot be this process's uploads.
            sweep = asyncio.ensure_future(_sweep_after_start(services, started))
            log.info("ready", extra={"data_dir": str(config.data_dir.resolve()),
                                     "catalog": services.database.dialect})
            yield
            if config.scheduler_enabled:
                app[jobs.SCHEDULER_KEY].shutdown(wait=False)
            await _finish(sweep, config.shutdown_timeout)
            await _checkpoint_if_possible(services)
        finally:
            lock.release()


async def _recover(services: Services) -> None:
    discarded = await services.blobs.discard_incomplete()
    if discarded:
        log.warning("cleaned up after an interrupted run",
                    extra={"partial_uploads": discarded})
    changes = await retention.apply_configured_retention(services)
    if changes:
        log.warning("retention periods changed; stored recordings recomputed",
                    extra={"changes": changes})


async def _sweep_after_start(services: Services, started: datetime) -> None:
    """A crash's orphan blobs (written, their row never committed) go soon after start,
    unless another process still writes (a worker draining while we restart, another
    replica): its blobs may be about to get rows, and wait out the grace."""
    try:
        async with services.database.exclusive("orphan_sweep") as held:
            if not held:
                return
            busy = await services.blobs.writers_elsewhere()
            cutoff = started - jobs.ORPHAN_GRACE if busy else started
            orphans = await jobs.sweep_orphans(services, services.clock() - cutoff)
        if orphans:
            log.warning("cleaned up after an interrupted run", extra={"orphan_blobs": orphans})
    except Exception:
        log.exception("the sweep for orphan blobs after start failed; the hourly one retries")


async def _finish(task: asyncio.Future[None], within: float) -> None:
    """Lets ``task`` end within ``within`` seconds, else cancels it (safe to cut short)."""
    try:
        async with asyncio.timeout(within):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _checkpoint_if_possible(services: Services) -> None:
    """The start and stop checkpoints; on a full disk the service still starts (and says
    so in /readyz) and stops cleanly, and the scheduled checkpoint catches up later."""
    try:
        await jobs.checkpoint(services)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.error("could not sign an audit checkpoint: the disk is full")


def create_app(config: Config, clock: Clock = system_clock,
               extra_worker: bool = False) -> web.Application:
    app = web.Application(middlewares=[request_context, authentication],
                          client_max_size=1024 * 1024)
    app[CONFIG] = config
    app[EXTRA_WORKER] = extra_worker
    app[CLOCK] = clock
    app[OPENAPI] = openapi_document(sorted(config.purposes))
    app[IN_FLIGHT] = InFlight()
    app[UPLOAD_SLOTS] = UploadSlots(config.max_concurrent_uploads)
    app[DRAINING] = asyncio.Event()
    app.cleanup_ctx.append(_services_ctx)
    app.on_response_prepare.append(common_headers)
    add_routes(app)
    setup_console(app)
    return app
