"""The app factory: configuration in, a ready aiohttp application out."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler

from recordings_service import auditing, jobs, retention, sessions
from recordings_service.appkeys import (
    ACTOR,
    CLOCK,
    CONFIG,
    OPENAPI,
    REQUEST_ID,
    SERVICES,
    SESSION,
    UPLOAD_SLOTS,
)
from recordings_service.auditing import Origin
from recordings_service.auth import Actor, authenticate
from recordings_service.clock import Clock, system_clock
from recordings_service.config import Config
from recordings_service.errors import BadRequest, ServiceError, Unauthenticated
from recordings_service.logs import request_id_var
from recordings_service.openapi import openapi_document
from recordings_service.problems import (
    from_http_exception,
    from_service_error,
    from_storage_error,
    from_unexpected,
    problem,
)
from recordings_service.routes import PUBLIC_ROUTES, add_routes
from recordings_service.services import Services, open_services
from storage.errors import StorageError
from storage.faults import is_disk_full

log = logging.getLogger("recordings_service.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class InFlight:
    """Counts requests being handled, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()


IN_FLIGHT = web.AppKey("in_flight", InFlight)
DRAINING = web.AppKey("draining", asyncio.Event)
EXTRA_WORKER = web.AppKey("extra_worker", bool)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, problem+json for every error, metrics and one access-log line."""
    if request.app[DRAINING].is_set():
        return problem(503, "Service Unavailable", "shutting_down",
                       "the service is shutting down; retry on another instance",
                       {"Connection": "close", "Retry-After": "5"})
    request.app[IN_FLIGHT].enter()
    try:
        return await _handle(request, handler)
    finally:
        request.app[IN_FLIGHT].leave()


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    metrics = request.app[SERVICES].metrics
    status = 500
    reason = None
    try:
        try:
            await _refuse_undecodable(request)
            response = await handler(request)
        except ServiceError as exc:
            response, reason = from_service_error(exc), exc.reason
        except StorageError as exc:
            response = from_storage_error(exc)
            reason = "storage_error"
        except web.HTTPException as exc:
            response = from_http_exception(exc)
        except (asyncio.CancelledError, ConnectionResetError) as exc:
            status = 499  # client went away
            # aiohttp keeps a lost connection's exception on the request's payload stream,
            # and its traceback holds every frame of this request (an upload's buffers,
            # its sniffer's megabyte): a reference cycle that only a full collection frees,
            # about 2 MB per dropped upload. Nothing reads that traceback: drop it here.
            raise exc.with_traceback(None)  # noqa: B904 - the same exception, re-raised
        except Exception as exc:
            response, reason = from_unexpected(exc, request.method)
            if reason == "internal_error":
                log.exception("unhandled error")
            else:
                log.error("request failed", extra={"reason": reason,
                                                   "error": type(exc).__name__})
        status = response.status
        if reason is not None:
            metrics.errors.labels(reason).inc()
        return response
    finally:
        route = _route_name(request)
        elapsed = time.perf_counter() - started
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(route).observe(elapsed)
        actor = request.get(ACTOR)
        log.info("request", extra={
            "method": request.method, "route": route, "status": status,
            "duration_ms": round(elapsed * 1000, 2), "reason": reason,
            "actor": actor.name if actor else None,
        })
        request_id_var.reset(token)


_UNDECODABLE = re.compile(r"[\udc80-\udcff]")


async def _refuse_undecodable(request: web.Request) -> None:
    """aiohttp keeps bytes that are not UTF-8 as lone surrogates; no handler should see
    them (they cannot be stored, logged or compared safely). Refused and audited, with
    the header's name only."""
    where = next((name for name, value in request.headers.items()
                  if not value.isascii() and _UNDECODABLE.search(value)), None)
    if where is None and _UNDECODABLE.search(request.raw_path):
        where = "request target"
    if where is None:
        return
    await auditing.record(request.app[SERVICES], auditing.event(
        auditing.ANONYMOUS, Origin(request.remote, request.get(REQUEST_ID)), "request", "denied",
        reason="invalid_header", detail={"method": request.method, "where": where}))
    raise BadRequest("invalid_header", f"{where} holds bytes that are not UTF-8 text")


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: every route needs a valid bearer token or a person's session
    cookie unless listed as public; a change made by cookie needs its CSRF token."""
    resource = request.match_info.route.resource
    if resource is None or (request.method, resource.canonical) in PUBLIC_ROUTES:
        return await handler(request)
    authorization = request.headers.get("Authorization")
    cookie = request.cookies.get(sessions.COOKIE)
    if authorization is None and cookie:
        session = await sessions.authenticate(request.app[SERVICES], cookie)
        if session is None:
            raise Unauthenticated("the session has ended; sign in again")
        sessions.check_csrf(session, request.method, request.headers.get("X-CSRF-Token"),
                            request.headers.get("Origin"),
                            request.headers.get("Sec-Fetch-Site"), request.host)
        request[SESSION] = session
        request[ACTOR] = Actor(session.user_name, frozenset(session.roles))
        return await handler(request)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    services = request.app[SERVICES]
    actor = await authenticate(services.database, token.strip(), services.clock())
    if actor is None:
        raise Unauthenticated("the bearer token is unknown, revoked or expired")
    request[ACTOR] = actor
    return await handler(request)


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Request-Id"] = request.get(REQUEST_ID) or uuid.uuid4().hex
    # Recordings, searches, links, holds and subject requests carry personal data: no
    # shared or browser cache may keep any answer unless a handler says otherwise.
    response.headers.setdefault("Cache-Control", "no-store")
    # Instead of aiohttp's version banner.
    response.headers["Server"] = "recordings-service"


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
    app[UPLOAD_SLOTS] = asyncio.Semaphore(config.max_concurrent_uploads)
    app[DRAINING] = asyncio.Event()
    app.cleanup_ctx.append(_services_ctx)
    app.on_response_prepare.append(_common_headers)
    add_routes(app)
    return app
