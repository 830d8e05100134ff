"""Purposes, restriction, erasure and purge runs (role compliance; every change audited)."""

from __future__ import annotations

from aiohttp import web

from recordings_service import fields, retention
from recordings_service.api.handlers.common import (
    caller,
    json_body,
    json_response,
    page_limit,
    recording_for_caller,
)
from recordings_service.appkeys import origin, services
from recordings_service.errors import BadRequest
from storage.catalog import Recording

COMPLIANCE = ("compliance",)


def _recording(request: web.Request, rec: Recording) -> web.Response:
    return json_response(recording_for_caller(request, rec))


async def add_purpose(request: web.Request) -> web.Response:
    actor = caller(request)
    body = await json_body(request)
    reason = retention.require_reason(body)
    purpose = body.get("purpose")
    if not isinstance(purpose, str):
        raise BadRequest("unknown_purpose", "purpose must name a configured purpose")
    rec = await retention.add_purpose(services(request), actor, origin(request),
                                      request.match_info["recording_id"], purpose, reason)
    return _recording(request, rec)


async def withdraw_purpose(request: web.Request) -> web.Response:
    actor = caller(request)
    reason = retention.require_reason(await json_body(request))
    rec = await retention.withdraw_purpose(services(request), actor, origin(request),
                                           request.match_info["recording_id"],
                                           request.match_info["purpose"], reason)
    return _recording(request, rec)


async def _restriction(request: web.Request, placed: bool) -> web.Response:
    actor = caller(request)
    reason = retention.require_reason(await json_body(request))
    rec = await retention.restrict(services(request), actor, origin(request),
                                   request.match_info["recording_id"], reason, placed=placed)
    return _recording(request, rec)


async def place_restriction(request: web.Request) -> web.Response:
    return await _restriction(request, placed=True)


async def lift_restriction(request: web.Request) -> web.Response:
    return await _restriction(request, placed=False)


async def erase(request: web.Request) -> web.Response:
    actor = caller(request)
    body = await json_body(request)
    reason = retention.require_reason(body)
    rec = await retention.erase(services(request), actor, origin(request),
                                request.match_info["recording_id"], reason,
                                fields.request_reference(body))
    return _recording(request, rec)


async def post_purge_run(request: web.Request) -> web.Response:
    actor = caller(request)
    body = await json_body(request)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("invalid_json", "dry_run must be true or false")
    run = await retention.run_purge(services(request), actor, origin(request), dry_run)
    return json_response(run, status=201)


async def list_purge_runs(request: web.Request) -> web.Response:
    page, next_cursor = await retention.list_runs(services(request),
                                                  request.query.get("cursor"),
                                                  page_limit(request))
    return json_response({"items": [retention.run_json(r) for r in page],
                          "next_cursor": next_cursor})


async def get_purge_run(request: web.Request) -> web.Response:
    run = await retention.get_run(services(request), request.match_info["run_id"])
    return json_response(retention.run_json(run))
