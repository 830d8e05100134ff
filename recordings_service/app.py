"""The app factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta

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
            async with services.database.exclusive("startup") as held:
                if held:
                    await _recover(services)
            await _checkpoint_if_possible(services)
            app[SERVICES] = services
            if config.scheduler_enabled:
                app[jobs.SCHEDULER_KEY] = jobs.start_scheduler(services)
            log.info("ready", extra={"data_dir": str(config.data_dir.resolve()),
                                     "catalog": services.database.dialect})
            yield
            if config.scheduler_enabled:
                app[jobs.SCHEDULER_KEY].shutdown(wait=False)
            await _checkpoint_if_possible(services)
        finally:
            lock.release()


async def _recover(services: Services) -> None:
    discarded = await services.blobs.discard_incomplete()
    # A crash's orphans go at once, unless another process still writes (a worker
    # draining while we restart, another replica): its blobs may be about to get rows.
    busy = await services.blobs.writers_elsewhere()
    orphans = await jobs.sweep_orphans(
        services, grace=jobs.ORPHAN_GRACE if busy else timedelta(0))
    if discarded or orphans:
        log.warning("cleaned up after an interrupted run",
                    extra={"partial_uploads": discarded, "orphan_blobs": orphans})
    changes = await retention.apply_configured_retention(services)
    if changes:
        log.warning("retention periods changed; stored recordings recomputed",
                    extra={"changes": changes})


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
