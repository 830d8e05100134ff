"""Moments marked in a call: parse, call moments.py, render JSON."""

from __future__ import annotations

from aiohttp import web

from recordings_service import moments
from recordings_service.api.handlers.common import caller, json_body, json_response
from recordings_service.appkeys import origin, services


async def post_moment(request: web.Request) -> web.Response:
    moment = await moments.add(services(request), caller(request), origin(request),
                               request.match_info["recording_id"], await json_body(request))
    return json_response(moments.moment_json(moment), status=201)


async def list_moments(request: web.Request) -> web.Response:
    purpose = request.headers.get("Access-Purpose") or request.query.get("purpose")
    found = await moments.of_recording(services(request), caller(request), origin(request),
                                       request.match_info["recording_id"], purpose)
    return json_response({"items": [moments.moment_json(m) for m in found]})


async def delete_moment(request: web.Request) -> web.Response:
    await moments.remove(services(request), caller(request), origin(request),
                         request.match_info["recording_id"], request.match_info["moment_id"])
    return web.Response(status=204)
