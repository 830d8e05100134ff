"""Legal holds (role compliance)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from recordings_service import holds, retention
from recordings_service.access import decode_cursor, encode_cursor
from recordings_service.errors import NotFound
from recordings_service.handlers.common import (
    json_body,
    json_response,
    origin,
    page_limit,
    require,
    services,
)
from storage import retention_store


async def post_hold(request: web.Request) -> web.Response:
    actor = await require(request, "legal_hold_placed", "compliance")
    hold = await holds.place(services(request), actor, origin(request),
                             await json_body(request))
    return json_response(holds.hold_json(hold), status=201,
                         headers={"Location": f"/v1/legal-holds/{hold.id}"})


async def list_holds(request: web.Request) -> web.Response:
    await require(request, "legal_hold_read", "compliance")
    cursor = request.query.get("cursor")
    after: tuple[datetime, str] | None = decode_cursor(cursor) if cursor else None
    limit = page_limit(request)
    async with services(request).database.read() as conn:
        found = await retention_store.list_holds(conn, after, limit + 1)
    page = found[:limit]
    return json_response({"items": [holds.hold_json(h) for h in page],
                          "next_cursor": encode_cursor(page[-1].placed_at, page[-1].id)
                          if len(found) > limit else None})


async def get_hold(request: web.Request) -> web.Response:
    await require(request, "legal_hold_read", "compliance")
    async with services(request).database.read() as conn:
        hold = await retention_store.get_hold(conn, request.match_info["hold_id"])
    if hold is None:
        raise NotFound("no such legal hold")
    return json_response(holds.hold_json(hold))


async def release_hold(request: web.Request) -> web.Response:
    actor = await require(request, "legal_hold_released", "compliance")
    reason = retention.require_reason(await json_body(request))
    hold = await holds.release(services(request), actor, origin(request),
                               request.match_info["hold_id"], reason)
    return json_response(holds.hold_json(hold))
