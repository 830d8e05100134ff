"""The training library: collections, clips, and sharing with agents."""

from __future__ import annotations

from aiohttp import web

from recordings_service import training
from recordings_service.api.handlers.common import caller, json_body, json_response, page_limit
from recordings_service.appkeys import origin, services


async def post_collection(request: web.Request) -> web.Response:
    made = await training.create(services(request), caller(request), origin(request),
                                 await json_body(request))
    return json_response(training.collection_json(made), status=201)


async def list_collections(request: web.Request) -> web.Response:
    page, next_cursor = await training.list_visible(
        services(request), caller(request), request.query.get("cursor"), page_limit(request))
    return json_response({"items": [training.collection_json(c) for c in page],
                          "next_cursor": next_cursor})


async def get_collection(request: web.Request) -> web.Response:
    found, clips, agents = await training.read(services(request), caller(request),
                                               origin(request),
                                               request.match_info["collection_id"])
    return json_response({**training.collection_json(found), "shared_with": agents,
                          "clips": [c.json() for c in clips]})


async def post_clip(request: web.Request) -> web.Response:
    svc, actor = services(request), caller(request)
    clip = await training.add_clip(svc, actor, origin(request),
                                   request.match_info["collection_id"],
                                   await json_body(request))
    return json_response(training.ClipState(clip, True, None, None).json(), status=201)


async def delete_clip(request: web.Request) -> web.Response:
    await training.remove_clip(services(request), caller(request), origin(request),
                               request.match_info["collection_id"],
                               request.match_info["clip_id"])
    return web.Response(status=204)


async def _share(request: web.Request, shared: bool) -> web.Response:
    changed = await training.share(services(request), caller(request), origin(request),
                                   request.match_info["collection_id"],
                                   request.match_info["agent_id"], shared)
    return json_response({"agent_id": request.match_info["agent_id"], "shared": shared,
                          "changed": changed})


async def put_share(request: web.Request) -> web.Response:
    return await _share(request, True)


async def delete_share(request: web.Request) -> web.Response:
    return await _share(request, False)
