"""Helpers every handler shares: who is calling, from where, and parsing of inputs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from recordings_service import auditing
from recordings_service.appkeys import ACTOR, REQUEST_ID, SERVICES
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import BadRequest, Forbidden, Unauthenticated
from recordings_service.ingest import parse_time
from recordings_service.services import Services

MAX_JSON_BODY = 64 * 1024


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def origin(request: web.Request) -> Origin:
    return Origin(request.remote, request.get(REQUEST_ID))


async def require(request: web.Request, action: str, *roles: str) -> Actor:
    """The caller, if it holds one of ``roles``; a refusal is audited."""
    actor: Actor | None = request.get(ACTOR)
    if actor is None:
        raise Unauthenticated()
    if actor.roles & set(roles):
        return actor
    recording_id = request.match_info.get("recording_id")
    await auditing.record(services(request), auditing.event(
        actor, origin(request), action, "denied", recording_id=recording_id,
        reason="missing_role", detail={"required_roles": sorted(roles)}))
    raise Forbidden("missing_role", f"this needs one of the roles: {', '.join(sorted(roles))}")


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise BadRequest("invalid_json", "the JSON body is too large")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise BadRequest("invalid_json", "the JSON body is too large")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    return body


def query_time(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return parse_time(value, name)
    except BadRequest:
        raise BadRequest("invalid_query", f"{name} must be an RFC 3339 time") from None


def page_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise BadRequest("invalid_query", "limit must be an integer from 1 to 500")
    return int(raw)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> web.Response:
    return web.json_response(data, status=status, headers=headers)
