"""The middlewares both faces share: request ids, errors rendered for the face that was
asked (problem+json for the API, a page for the console), metrics, one access-log line,
and authentication with each route's roles enforced here and nowhere else."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import time
import uuid
from dataclasses import replace

from aiohttp import web
from aiohttp.typedefs import Handler

from recordings_service import auditing, sessions
from recordings_service.api.problems import (
    Problem,
    from_http_exception,
    from_service_error,
    from_storage_error,
    from_unexpected,
    problem,
)
from recordings_service.appkeys import ACTOR, REQUEST_ID, SERVICES, SESSION, origin
from recordings_service.auth import Actor, authenticate
from recordings_service.client_address import same_origin
from recordings_service.console.pages import error_page, sign_in_redirect
from recordings_service.errors import BadRequest, Forbidden, ServiceError, Unauthenticated
from recordings_service.logs import request_id_var
from recordings_service.routing import Face, Guard, guard_of
from recordings_service.services import Services
from storage.errors import StorageError

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


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def face_of(request: web.Request) -> Face:
    """The face a request is for: its route's; for an unmatched path, a browser's page
    request outside the API gets the console's page."""
    guard = guard_of(request)
    if guard is not None:
        return guard.face
    browsing = "text/html" in request.headers.get("Accept", "")
    return "console" if browsing and not request.path.startswith("/v1/") else "api"


def render(request: web.Request, found: Problem) -> web.Response:
    if found.status == 401:
        guard = guard_of(request)
        if guard is not None and guard.basic:
            # This route also takes HTTP Basic (a PBX's curl): say so, or no client that
            # waits for a challenge ever sends its credentials.
            found = replace(found, headers={**found.headers, "WWW-Authenticate": (
                'Bearer realm="recordings", Basic realm="recordings", charset="UTF-8"')})
    if face_of(request) == "api":
        return found.response()
    if found.status == 401:
        return sign_in_redirect(request)
    return error_page(request, found)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, a rendered error for every failure, metrics and one access-log line."""
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
        failure: Problem | None = None
        try:
            await _refuse_unstorable(request)
            response = await handler(request)
        except ServiceError as exc:
            failure, reason = from_service_error(exc), exc.reason
        except StorageError as exc:
            failure = from_storage_error(exc)
            reason = "storage_error"
        except web.HTTPException as exc:
            failure = from_http_exception(exc)
        except (asyncio.CancelledError, ConnectionResetError) as exc:
            status = 499  # client went away
            # aiohttp keeps a lost connection's exception on the request's payload stream,
            # and its traceback holds every frame of this request (an upload's buffers,
            # its sniffer's megabyte): a reference cycle that only a full collection frees,
            # about 2 MB per dropped upload. Nothing reads that traceback: drop it here.
            raise exc.with_traceback(None)  # noqa: B904 - the same exception, re-raised
        except Exception as exc:
            failure, reason = from_unexpected(exc, request.method)
            if reason == "internal_error":
                log.exception("unhandled error")
            else:
                log.error("request failed", extra={"reason": reason,
                                                   "error": type(exc).__name__})
        if failure is not None:
            response = render(request, failure)
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


async def _refuse_unstorable(request: web.Request) -> None:
    """aiohttp keeps bytes that are not UTF-8 as lone surrogates, and a ``%00`` in the path
    or query decodes to NUL; no handler should see either (they cannot be stored, logged
    or compared safely, and PostgreSQL refuses NUL in text: a search for one was a 500).
    Refused and audited, naming where, never the value."""
    where = next((name for name, value in request.headers.items()
                  if not value.isascii() and _UNDECODABLE.search(value)), None)
    if where is not None:
        reason, detail = "invalid_header", f"{where} holds bytes that are not UTF-8 text"
    elif _UNDECODABLE.search(request.raw_path) or "\x00" in request.path \
            or "\x00" in request.query_string \
            or any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        where = "request target"
        reason, detail = "invalid_request_target", ("the request target holds bytes that are "
                                                    "not UTF-8 text or a NUL character")
    else:
        return
    await auditing.record(request.app[SERVICES], auditing.event(
        auditing.ANONYMOUS, origin(request), "request", "denied",
        reason=reason, detail={"method": request.method, "where": where}))
    raise BadRequest(reason, detail)


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Deny by default: every route needs a valid bearer token or a person's session
    cookie unless its guard is public, and the caller must hold one of the guard's roles
    (a refusal is audited); a change made by cookie needs its CSRF token."""
    guard = guard_of(request)
    if guard is None and request.match_info.route.resource is not None:
        # A route someone registered without declaring who may call it.
        raise Forbidden("route_not_guarded", "this route declares no roles, so no one may call it")
    if guard is None or guard.public:
        return await handler(request)  # public, or nothing matched (404/405 follow)
    actor = await _authenticate(request, guard)
    if not actor.roles & guard.roles:
        await auditing.record(request.app[SERVICES], auditing.event(
            actor, origin(request), guard.action, "denied",
            recording_id=request.match_info.get("recording_id"), reason="missing_role",
            detail={"required_roles": sorted(guard.roles)}))
        raise Forbidden("missing_role",
                        f"this needs one of the roles: {', '.join(sorted(guard.roles))}")
    request[ACTOR] = actor
    if not guard.audit_refusals:
        return await handler(request)
    try:
        return await handler(request)
    except ServiceError as refused:
        if refused.status < 500:
            await auditing.record(request.app[SERVICES], auditing.event(
                actor, origin(request), guard.action, "denied",
                recording_id=request.match_info.get("recording_id"), reason=refused.reason,
                detail={"method": request.method, "status": refused.status}))
        raise


async def _authenticate(request: web.Request, guard: Guard) -> Actor:
    authorization = request.headers.get("Authorization")
    cookie = request.cookies.get(sessions.COOKIE)
    services = request.app[SERVICES]
    if authorization is None and cookie:
        session = await sessions.authenticate(services, cookie)
        if session is None:
            raise Unauthenticated("the session has ended; sign in again")
        sessions.check_csrf(session, request.method, request.headers.get("X-CSRF-Token"),
                            request.headers.get("Sec-Fetch-Site"),
                            same_origin(request.headers.get("Origin"), request))
        request[SESSION] = session
        return Actor(session.user_name, frozenset(session.roles), session.agent_id)
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "basic" and guard.basic:
        return await _basic(services, credentials.strip())
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated()
    actor = await authenticate(services.database, credentials.strip(), services.clock())
    if actor is None:
        raise Unauthenticated("the bearer token is unknown, revoked or expired")
    return actor


async def _basic(services: Services, credentials: str) -> Actor:
    """HTTP Basic whose password is a token and whose user name is that token's name."""
    refused = Unauthenticated("the token name and token in the Basic credentials do not "
                              "match a usable token")
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    name, colon, token = decoded.partition(":")
    if not colon or not token:
        raise refused
    actor = await authenticate(services.database, token, services.clock())
    if actor is None or not hmac.compare_digest(actor.name.encode(), name.encode()):
        raise refused
    return actor


# Strict for every answer: pages load only this service's own script, style, images and
# audio, post only to it, and cannot be framed; API answers need nothing at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'")


# On every answer, including those to requests aiohttp could not parse (http_server.py).
SECURITY_HEADERS = {
    # Instead of aiohttp's version banner.
    "Server": "recordings-service",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Request-Id"] = request.get(REQUEST_ID) or uuid.uuid4().hex
    # Recordings, searches, links, holds and subject requests carry personal data: no
    # shared or browser cache may keep any answer unless a handler says otherwise.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.update(SECURITY_HEADERS)
