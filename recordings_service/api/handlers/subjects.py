"""Data-subject requests (role compliance): export, erasure, restriction, objection,
rectification, and the register of requests."""

from __future__ import annotations

import asyncio
import hashlib
import logging

from aiohttp import web

from recordings_service import auditing, export, fields, retention, subjects
from recordings_service.api.handlers.common import (
    caller,
    json_body,
    json_response,
    page_limit,
    recording_for_caller,
)
from recordings_service.appkeys import origin, services
from recordings_service.errors import BadRequest
from storage.errors import StorageError

log = logging.getLogger(__name__)
COMPLIANCE = ("compliance",)


async def post_export(request: web.Request) -> web.StreamResponse:
    actor = caller(request)
    svc = services(request)
    customer_id = fields.customer_id(request.match_info["customer_id"])
    reference = fields.request_reference(await json_body(request))
    await subjects.request_for(svc, "access", customer_id, reference)  # 409 before acting
    where = origin(request)

    async def audit_page(ids: list[str]) -> None:
        async with svc.database.write() as conn:
            for recording_id in ids:
                await auditing.append(svc, conn, auditing.event(
                    actor, where, "export", "allowed", recording_id=recording_id,
                    detail={"request_reference": reference}))

    # Everything that can fail is done before the first byte: the access is audited and
    # the request registered as answered. Once the zip has started, a failure can only
    # cut the connection (a client sees a truncated zip, never a second response in it).
    counts = await export.prepare(svc, customer_id, audit_page)
    done = await subjects.complete(svc, actor, where, "access", customer_id, reference,
                                   counts)
    now = svc.clock()
    response = web.StreamResponse(headers={
        "Content-Type": "application/zip", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{export.export_filename(now)}"'})
    await response.prepare(request)
    digest, sent = hashlib.sha256(), 0

    async def write(data: bytes) -> None:
        nonlocal sent
        digest.update(data)
        sent += len(data)
        await response.write(data)

    try:
        await export.stream_zip(svc, customer_id, write)
        # The evidence of what was handed over: the zip's SHA-256 and size, on the request.
        await subjects.record_export(svc, done, digest.hexdigest(), sent)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:  # noqa: BLE001 - the response has started: cut, never answer twice
        if isinstance(exc, StorageError):
            svc.metrics.integrity_failures.inc()
        log.error("export cut short", extra={"error": type(exc).__name__})
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


async def _subject_action(request: web.Request, type_: str) -> web.Response:
    actor = caller(request)
    svc = services(request)
    customer_id = fields.customer_id(request.match_info["customer_id"])
    body = await json_body(request)
    reason = retention.require_reason(body)
    reference = fields.request_reference(body)
    await subjects.request_for(svc, type_, customer_id, reference)  # 409 before acting
    where = origin(request)
    extra: dict[str, int] = {}
    if type_ == "erasure":
        results = await subjects.erase(svc, actor, where, customer_id, reason, reference)
        extra["call_records_erased"] = await subjects.erase_call_records(
            svc, actor, where, customer_id, reference)
    elif type_ == "restriction":
        results = await subjects.restrict(svc, actor, where, customer_id, reason)
    else:
        results = await subjects.object_to_processing(svc, actor, where, customer_id, reason)
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    done = await subjects.complete(svc, actor, where, type_, customer_id, reference,
                                   {"recordings": len(results), "outcomes": outcomes,
                                    "results": results, **extra})
    return json_response({"results": results, **extra,
                          "subject_request": subjects.request_json(done, svc.clock())})


async def post_erasure(request: web.Request) -> web.Response:
    return await _subject_action(request, "erasure")


async def post_restriction(request: web.Request) -> web.Response:
    return await _subject_action(request, "restriction")


async def post_objection(request: web.Request) -> web.Response:
    return await _subject_action(request, "objection")


async def patch_recording(request: web.Request) -> web.Response:
    actor = caller(request)
    svc = services(request)
    body = await json_body(request)
    reference = fields.request_reference(body)  # checked before anything changes
    await subjects.request_for_recording(svc, "rectification",
                                         request.match_info["recording_id"], reference)
    rec = await subjects.rectify(svc, actor, origin(request),
                                 request.match_info["recording_id"], body)
    if reference and rec.customer_id:
        await subjects.complete(svc, actor, origin(request), "rectification",
                                rec.customer_id, reference, {"recording_id": rec.id})
    return json_response(recording_for_caller(request, rec))


async def post_subject_request(request: web.Request) -> web.Response:
    actor = caller(request)
    svc = services(request)
    registered = await subjects.register(svc, actor, origin(request), await json_body(request))
    return json_response(subjects.request_json(registered, svc.clock()), status=201,
                         headers={"Location": f"/v1/subject-requests/{registered.id}"})


async def list_subject_requests(request: web.Request) -> web.Response:
    svc = services(request)
    open_only = request.query.get("open", "false").lower()
    if open_only not in ("true", "false"):
        raise BadRequest("invalid_query", "open must be true or false")
    customer = request.query.get("customer_id")
    page, next_cursor = await subjects.list_requests(
        svc, open_only == "true", request.query.get("cursor"), page_limit(request),
        None if customer is None else fields.customer_id(customer, "invalid_query"))
    now = svc.clock()
    return json_response({"items": [subjects.request_json(r, now) for r in page],
                          "next_cursor": next_cursor})


async def get_subject_request(request: web.Request) -> web.Response:
    svc = services(request)
    found = await subjects.get_request(svc, request.match_info["request_id"])
    return json_response(subjects.request_json(found, svc.clock()))
