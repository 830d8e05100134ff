"""Redactions over HTTP: rewrite spans of a recording, list them, prove one."""

from __future__ import annotations

from aiohttp import web

from recordings_service import redaction
from recordings_service.api.handlers.common import caller, json_body, json_response
from recordings_service.appkeys import origin, services


async def post_redaction(request: web.Request) -> web.Response:
    body = await json_body(request)
    done = await redaction.redact(services(request), caller(request), origin(request),
                                  request.match_info["recording_id"], body)
    return json_response(done, status=201, headers={
        "Location": f"/v1/recordings/{done['recording_id']}/redactions/{done['id']}"})


async def list_redactions(request: web.Request) -> web.Response:
    found = await redaction.list_redactions(services(request), caller(request),
                                            origin(request), request.match_info["recording_id"])
    return json_response({"items": found})


async def get_proof(request: web.Request) -> web.Response:
    proof = await redaction.proof(services(request), caller(request), origin(request),
                                  request.match_info["recording_id"],
                                  request.match_info["redaction_id"])
    return json_response(proof)
