"""Legal holds (role compliance)."""

from __future__ import annotations

from aiohttp import web

from recordings_service import holds, retention
from recordings_service.errors import NotFound
from recordings_service.handlers.common import (
    json_body,
    json_response,
    origin,
    page_limit,
    require,
    services,
)
from recordings_service.pagination import decode_cursor, page_of
from storage import retention_store


async def post_hold(request: web.Request) -> web.Response:
    actor = await require(request, "legal_hold_placed", "compliance")
    hold = await holds.place(services(request), actor, origin(request),
                             await json_body(request))
    return json_response(holds.hold_json(hold), status=201,
                         headers={"Location": f"/v1/legal-holds/{hold.id}"})


async def list_holds(request: web.Request) -> web.Response:
    await require(request, "legal_hold_read", "compliance")
    limit = page_limit(request)
    async with services(request).database.read() as conn:
        found = await retention_store.list_holds(
            conn, decode_cursor(request.query.get("cursor")), limit + 1)
    page, next_cursor = page_of(found, limit, lambda h: (h.placed_at, h.id))
    return json_response({"items": [holds.hold_json(h) for h in page],
                          "next_cursor": next_cursor})


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
