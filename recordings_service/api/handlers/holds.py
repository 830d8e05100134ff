"""Legal holds (role compliance)."""

from __future__ import annotations

from aiohttp import web

from recordings_service import holds, retention
from recordings_service.api.handlers.common import caller, json_body, json_response, page_limit
from recordings_service.appkeys import origin, services


async def post_hold(request: web.Request) -> web.Response:
    actor = caller(request)
    hold = await holds.place(services(request), actor, origin(request),
                             await json_body(request))
    return json_response(holds.hold_json(hold), status=201,
                         headers={"Location": f"/v1/legal-holds/{hold.id}"})


async def list_holds(request: web.Request) -> web.Response:
    page, next_cursor = await holds.list_page(services(request), request.query.get("cursor"),
                                              page_limit(request))
    return json_response({"items": [holds.hold_json(h) for h in page],
                          "next_cursor": next_cursor})


async def get_hold(request: web.Request) -> web.Response:
    return json_response(holds.hold_json(await holds.get(services(request),
                                                          request.match_info["hold_id"])))


async def release_hold(request: web.Request) -> web.Response:
    actor = caller(request)
    reason = retention.require_reason(await json_body(request))
    hold = await holds.release(services(request), actor, origin(request),
                               request.match_info["hold_id"], reason)
    return json_response(holds.hold_json(hold))
