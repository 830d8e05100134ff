"""The audit log, its verification, checkpoints and public key. Reads are audited too."""

from __future__ import annotations

import base64

from aiohttp import web

from recordings_service import auditing, jobs
from recordings_service.errors import BadRequest
from recordings_service.handlers.common import (
    json_response,
    origin,
    page_limit,
    query_time,
    require,
    services,
)
from storage import audit_log
from storage.signing import public_key_pem

AUDIT_ROLES = ("auditor", "compliance")


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, seq = text.partition(":")
        if kind != "seq" or not seq.isdigit():
            raise ValueError(cursor)
        return int(seq)
    except ValueError:
        raise BadRequest("invalid_cursor", "the cursor is not one this service gave") from None


async def list_audit(request: web.Request) -> web.Response:
    actor = await require(request, "audit_read", *AUDIT_ROLES)
    svc = services(request)
    q = request.query
    outcome = q.get("outcome")
    if outcome is not None and outcome not in ("allowed", "denied", "error"):
        raise BadRequest("invalid_query", "outcome must be allowed, denied or error")
    flt = audit_log.AuditFilter(
        recording_id=q.get("recording_id"), actor=q.get("actor"), action=q.get("action"),
        purpose=q.get("purpose"), outcome=outcome, since=query_time(request, "since"),
        until=query_time(request, "until"))
    limit = page_limit(request)
    after = _after(q.get("cursor"))
    filters = {k: v for k, v in q.items() if k not in ("cursor", "limit")}
    await auditing.record(svc, auditing.event(actor, origin(request), "audit_read", "allowed",
                                              detail={"filter": filters}))
    async with svc.database.read() as conn:
        entries = await audit_log.list_entries(conn, flt, after, limit + 1)
    page = entries[:limit]
    return json_response({"items": page,
                          "next_cursor": _cursor(page[-1]["seq"]) if len(entries) > limit
                          else None})


async def verify_audit(request: web.Request) -> web.Response:
    actor = await require(request, "audit_verify", *AUDIT_ROLES)
    svc = services(request)
    report = await jobs.verify_audit(svc)
    await auditing.record(svc, auditing.event(
        actor, origin(request), "audit_verify", "allowed",
        detail={"ok": report.ok, "entries": report.entries,
                "first_bad_seq": report.first_bad_seq}))
    return json_response(report.as_json())


async def list_checkpoints(request: web.Request) -> web.Response:
    actor = await require(request, "audit_read", *AUDIT_ROLES)
    svc = services(request)
    await auditing.record(svc, auditing.event(actor, origin(request), "audit_read", "allowed",
                                              detail={"checkpoints": True}))
    async with svc.database.read() as conn:
        checkpoints = await audit_log.list_checkpoints(conn, limit=page_limit(request))
    return json_response({"items": [c.as_json() for c in checkpoints],
                          "origin": svc.config.audit_origin})


async def public_key(request: web.Request) -> web.Response:
    await require(request, "audit_read", *AUDIT_ROLES)
    pem = public_key_pem(services(request).signing_key.public_key())
    return web.Response(text=pem, content_type="application/x-pem-file")
