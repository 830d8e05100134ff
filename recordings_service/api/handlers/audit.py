"""The audit log, its verification, checkpoints and public key. Reads are audited too."""

from __future__ import annotations

from aiohttp import web

from recordings_service import audit_reading, listenings
from recordings_service.api.handlers.common import caller, json_response, page_limit, query_time
from recordings_service.appkeys import origin, services
from recordings_service.errors import BadRequest
from storage import audit_log
from storage.signing import public_key_pem


async def list_audit(request: web.Request) -> web.Response:
    q = request.query
    flt = audit_log.AuditFilter(
        recording_id=q.get("recording_id"), actor=q.get("actor"), action=q.get("action"),
        purpose=q.get("purpose"), outcome=q.get("outcome"), since=query_time(request, "since"),
        until=query_time(request, "until"))
    archived = q.get("archived", "false")
    if archived not in ("true", "false"):
        raise BadRequest("invalid_query", "archived must be true or false")
    order = q.get("order", "oldest")
    if order not in ("oldest", "newest"):
        raise BadRequest("invalid_query", "order must be oldest or newest")
    filters = {k: v for k, v in q.items() if k not in ("cursor", "limit", "order")}
    page, next_cursor, archived_entries = await audit_reading.read_entries(
        services(request), caller(request), origin(request), flt, filters, q.get("cursor"),
        page_limit(request), archived=archived == "true", newest_first=order == "newest")
    return json_response({"items": page, "next_cursor": next_cursor,
                          "archived_entries": archived_entries})


async def list_listenings(request: web.Request) -> web.Response:
    rec, found = await listenings.of_recording(services(request), caller(request),
                                               origin(request), request.match_info["recording_id"])
    return json_response({"recording_id": rec.id, "duration_seconds": rec.duration_seconds,
                          "items": [listenings.listening_json(rec, x) for x in found]})


async def verify_audit(request: web.Request) -> web.Response:
    full = request.query.get("full", "false")
    if full not in ("true", "false"):
        raise BadRequest("invalid_query", "full must be true or false")
    report = await audit_reading.verify(services(request), caller(request), origin(request),
                                        full=full == "true")
    return json_response(report.as_json())


async def list_checkpoints(request: web.Request) -> web.Response:
    svc = services(request)
    found = await audit_reading.checkpoints(svc, caller(request), origin(request),
                                            page_limit(request))
    return json_response({"items": [c.as_json() for c in found],
                          "origin": svc.config.audit_origin})


async def public_key(request: web.Request) -> web.Response:
    pem = public_key_pem(services(request).signing_key.public_key())
    return web.Response(text=pem, content_type="application/x-pem-file")
