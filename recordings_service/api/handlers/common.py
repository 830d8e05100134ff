"""Helpers every handler shares: who is calling, from where, and parsing of inputs."""

from __future__ import annotations

import json
import re
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from aiohttp import web

from recordings_service import access
from recordings_service.api.handlers import body_watch
from recordings_service.api.handlers.body_watch import BodyWatch, watched_body
from recordings_service.appkeys import ACTOR, services
from recordings_service.auth import Actor
from recordings_service.documents import recording_json
from recordings_service.errors import BadRequest
from recordings_service.times import parse_time
from storage.catalog import Recording
from storage.text import is_storable

MAX_JSON_BODY = 64 * 1024
_LIMIT = re.compile(r"[0-9]{1,3}")


def caller(request: web.Request) -> Actor:
    """Who is calling; the authentication middleware has already checked the route's
    roles (``routing.Guard``), so a handler never checks them again."""
    return request[ACTOR]


MAX_JSON_DEPTH = 16


def _storable(value: Any) -> bool:
    """No lone surrogate (cannot be encoded as UTF-8), no NUL (PostgreSQL text refuses
    it), no nesting deeper than any request needs. Iterative: depth is what is checked."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        if isinstance(item, str):
            if not is_storable(item):
                return False
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_json_object(raw: bytes, reason: str, what: str) -> dict[str, Any]:
    """``raw`` as a JSON object of storable values, or 400 with ``reason``."""
    body = parse_json(raw, reason, what)
    if not isinstance(body, dict):
        raise BadRequest(reason, f"{what} must be a JSON object")
    return body


def parse_json(raw: bytes, reason: str, what: str) -> Any:
    """``raw`` as JSON of storable values, or 400 with ``reason``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest(reason, f"{what} is not valid JSON") from None
    if not _storable(body):
        raise BadRequest(reason, f"{what} holds a value that cannot be stored: nesting "
                                 f"deeper than {MAX_JSON_DEPTH}, a NUL character or an "
                                 f"unpaired surrogate")
    return body


def watched(request: web.Request) -> AbstractAsyncContextManager[BodyWatch]:
    """The request body's watch: ``limits.body_idle_timeout_seconds`` of silence, or less
    than ``limits.body_min_bytes_per_second``, ends it."""
    config = services(request).config
    return watched_body(config.body_idle_timeout_seconds, config.body_min_bytes_per_second,
                        body_watch.RATE_WINDOW_SECONDS)


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await raw_body(request, MAX_JSON_BODY)
    if not raw.strip():
        return {}
    return parse_json_object(raw, "invalid_json", "the body")


async def raw_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (400 ``invalid_json`` past it)."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest("invalid_json", "the JSON body is too large")
    # read(n) returns what has arrived so far, not n bytes: read until the end.
    raw = b""
    async with watched(request) as watch:
        while chunk := await watch.read(request.content.read(limit + 1 - len(raw))):
            raw += chunk
            if len(raw) > limit:
                raise BadRequest("invalid_json", "the JSON body is too large")
    return raw


def query_time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None:
        return None
    return parse_time(value, name, "invalid_query")


_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,3})?")


def query_seconds(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not _SECONDS.fullmatch(raw):
        raise BadRequest("invalid_query", f"{name} must be a number of seconds")
    return float(raw)


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``; the first when not given."""
    value = request.query.get(name, choices[0])
    if value not in choices:
        raise BadRequest("invalid_query", f"{name} must be one of {', '.join(choices)}")
    return value


def page_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 500:
        raise BadRequest("invalid_query", "limit must be an integer from 1 to 500")
    return int(raw)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


def recording_for_caller(request: web.Request, rec: Recording) -> dict[str, Any]:
    """A recording's JSON with what this caller may hear it for now."""
    svc = services(request)
    return recording_json(rec, svc.clock(), access.allowed_purposes(svc, request[ACTOR], rec))
