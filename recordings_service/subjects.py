"""Data-subject rights: the subject-wide actions, rectification and the request register.

Each recording is changed in its own transaction (atomic per recording) and every action
is safe to repeat: a second erasure finds tombstones, a second objection finds nothing left
to withdraw.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from recordings_service import auditing, fields, policy, retention
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Conflict, NotFound, Refused
from recordings_service.fields import optional_text
from recordings_service.ingest import PATH_IDENTIFIERS, TEXT_FIELDS
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.services import Services
from recordings_service.times import parse_time
from storage import call_store, catalog, recording_search, retention_store, subject_store
from storage.limits import IDENTIFIER
from storage.subject_store import SubjectRequest

REQUEST_TYPES = ("access", "erasure", "restriction", "objection", "rectification")
# Objection (GDPR Art. 21) ends processing based on legitimate interest; withdrawing
# consent (Art. 7(3)) ends consent-based processing. Contract and legal obligation stay.
OBJECTION_BASES = frozenset({"legitimate_interest", "consent"})
PAGE = 200


async def pages_of(services: Services,
                   customer_id: str) -> AsyncIterator[list[catalog.Recording]]:
    """Every recording of the subject, tombstones included, a page at a time."""
    flt = recording_search.SearchFilter(subject_ref=services.subject_ref(customer_id))
    after: tuple[datetime, str] | None = None
    while True:
        async with services.database.read() as conn:
            page = await recording_search.search(conn, flt, after, PAGE)
        if page:
            yield page
        if len(page) < PAGE:
            return
        after = (page[-1].started_at, page[-1].id)


async def recordings_of(services: Services,
                        customer_id: str) -> AsyncIterator[catalog.Recording]:
    async for page in pages_of(services, customer_id):
        for rec in page:
            yield rec


# --- the register ----------------------------------------------------------------------


async def list_requests(services: Services, open_only: bool, cursor: str | None,
                        limit: int, customer_id: str | None = None,
                        ) -> tuple[list[SubjectRequest], str | None]:
    """The register (or one subject's part of it) in the order requests arrived,
    keyset-paged."""
    async with services.database.read() as conn:
        found = await subject_store.list_requests(conn, open_only, customer_id,
                                                  decode_cursor(cursor), limit + 1)
    return page_of(found, limit, lambda r: (r.received_at, r.id))


async def recordings_by_id(services: Services, ids: list[str],
                           ) -> dict[str, catalog.Recording]:
    """The recordings (tombstones included) a request's outcome names, by id."""
    found: dict[str, catalog.Recording] = {}
    async with services.database.read() as conn:
        for i in range(0, len(ids), 500):
            found |= {r.id: r for r in await catalog.get_recordings(conn, ids[i:i + 500])}
    return found


async def get_request(services: Services, request_id: str) -> SubjectRequest:
    async with services.database.read() as conn:
        found = await subject_store.get_request(conn, request_id)
    if found is None:
        raise NotFound("no such subject request")
    return found


REQUEST_STATES = ("open", "completed", "partially_completed", "refused")


def request_state(req: SubjectRequest) -> str:
    """What became of the request: a request is completed only when nothing it asked for
    was refused (a legal hold, a legal obligation to keep, a restriction)."""
    if req.completed_at is None:
        return "open"
    outcome = req.outcome or {}
    refused = int((outcome.get("outcomes") or {}).get("refused", 0))
    if refused and refused >= int(outcome.get("recordings", 0)):
        return "refused"
    return "partially_completed" if refused else "completed"


def request_json(req: SubjectRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": req.id, "type": req.type, "customer_id": req.customer_id,
        "request_reference": req.request_reference, "received_at": rfc3339(req.received_at),
        "due_at": rfc3339(req.due_at), "completed_at": rfc3339(req.completed_at),
        "state": request_state(req), "outcome": req.outcome,
        "registered_by": req.registered_by,
        "overdue": req.completed_at is None and now > req.due_at,
    }


def _duplicate(existing: SubjectRequest) -> Conflict:
    return Conflict("duplicate_reference",
                    f"the reference names request {existing.id} already ({existing.type} "
                    f"of another subject or kind, or registered before)")


async def request_for(services: Services, type_: str, customer_id: str,
                      reference: str | None) -> SubjectRequest | None:
    """The request an action under ``reference`` answers: the one registered under it
    for this subject and kind (open, or answered before and now answered again), or None
    when there is none yet. Raises Conflict (409 duplicate_reference) when the reference
    names another subject's or kind's request: checked before the action, so nothing is
    done under a reference that is not its own."""
    if not reference:
        return None
    async with services.database.read() as conn:
        existing = await subject_store.by_reference(conn, reference)
    if existing is not None and (existing.type, existing.customer_id) != (type_, customer_id):
        raise _duplicate(existing)
    return existing


async def register(services: Services, actor: Actor, origin: Origin,
                   body: dict[str, Any]) -> SubjectRequest:
    """Records a request when it arrives (letter, e-mail), before it is answered."""
    type_ = body.get("type")
    if type_ not in REQUEST_TYPES:
        raise BadRequest("invalid_request", f"type must be one of {', '.join(REQUEST_TYPES)}")
    customer_id = fields.customer_id(body.get("customer_id"), "invalid_request")
    reference = optional_text(body.get("request_reference"), "request_reference", IDENTIFIER,
                              "invalid_request")
    now = services.clock()
    received = parse_time(body["received_at"], "received_at", "invalid_request") \
        if "received_at" in body else now
    if received > now:
        raise BadRequest("invalid_request", "received_at lies in the future")
    return await _insert(services, actor, origin, type_, customer_id, reference, received)


async def _insert(services: Services, actor: Actor, origin: Origin, type_: str,
                  customer_id: str, reference: str | None,
                  received: datetime) -> SubjectRequest:
    request = SubjectRequest(
        id="dsr_" + secrets.token_urlsafe(12), type=type_, customer_id=customer_id,
        request_reference=reference, received_at=received,
        due_at=policy.add_months(received, 1), completed_at=None, outcome=None,
        registered_by=actor.name)
    async with services.database.write() as conn:
        existing = None if not reference else await subject_store.by_reference(conn, reference)
        if existing is not None:
            raise _duplicate(existing)
        await subject_store.insert_request(conn, request)
        await auditing.append(services, conn, auditing.event(
            actor, origin, "subject_request_registered", "allowed",
            detail={"request_id": request.id, "type": type_, "request_reference": reference}))
    return request


async def request_for_recording(services: Services, type_: str, recording_id: str,
                                reference: str | None) -> SubjectRequest | None:
    """``request_for`` the subject of a recording (an action on one recording)."""
    if not reference:
        return None
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
    if rec is None or not rec.customer_id:
        return None
    return await request_for(services, type_, rec.customer_id, reference)


async def complete(services: Services, actor: Actor, origin: Origin, type_: str,
                   customer_id: str, reference: str | None,
                   outcome: dict[str, Any]) -> SubjectRequest:
    """Records ``outcome`` on the request registered under ``reference`` (a request
    answered again, after a hold ended say, keeps its row; the audit log keeps every
    answer), or registers and closes one."""
    request = await request_for(services, type_, customer_id, reference)
    if request is None:
        request = await _insert(services, actor, origin, type_, customer_id, reference,
                                services.clock())
    async with services.database.write() as conn:
        await subject_store.complete_request(conn, request.id, services.clock(), outcome)
        done = await subject_store.get_request(conn, request.id)
    assert done is not None
    return done


async def record_export(services: Services, request: SubjectRequest, sha256: str,
                        size: int) -> None:
    """Adds the SHA-256 and size of the zip handed over to the access request it answered:
    evidence of exactly what the subject received."""
    async with services.database.write() as conn:
        await subject_store.complete_request(
            conn, request.id, request.completed_at or services.clock(),
            {**(request.outcome or {}), "export_sha256": sha256, "export_bytes": size})


# --- subject-wide actions ----------------------------------------------------------------


async def erase(services: Services, actor: Actor, origin: Origin, customer_id: str,
                reason: str, reference: str | None) -> list[dict[str, Any]]:
    results = []
    async for rec in recordings_of(services, customer_id):
        if rec.state == "purged":
            results.append({"id": rec.id, "outcome": "purged", "reason": None, "until": None})
            continue
        try:
            await retention.erase(services, actor, origin, rec.id, reason, reference)
        except Refused as refused:
            results.append({"id": rec.id, "outcome": "refused", "reason": refused.reason,
                            "until": rfc3339(refused.until)})
        else:
            results.append({"id": rec.id, "outcome": "purged", "reason": None, "until": None})
    return results


async def erase_call_records(services: Services, actor: Actor, origin: Origin,
                             customer_id: str, reference: str | None) -> int:
    """The subject's call records (kept to find calls never recorded): nothing obliges
    keeping them, so an erasure removes them all, holds or not."""
    async with services.database.write() as conn:
        erased = await call_store.delete_of_customer(conn, customer_id)
        if erased:
            await auditing.append(services, conn, auditing.event(
                actor, origin, "erasure", "allowed",
                detail={"call_records": erased, "request_reference": reference}))
    return erased


async def restrict(services: Services, actor: Actor, origin: Origin, customer_id: str,
                   reason: str) -> list[dict[str, Any]]:
    results = []
    async for rec in recordings_of(services, customer_id):
        if rec.state != "active":
            results.append({"id": rec.id, "outcome": "purged"})
            continue
        await retention.restrict(services, actor, origin, rec.id, reason, placed=True)
        results.append({"id": rec.id, "outcome": "restricted"})
    return results


async def object_to_processing(services: Services, actor: Actor, origin: Origin,
                               customer_id: str, reason: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    now = services.clock()
    async for rec in recordings_of(services, customer_id):
        if rec.state != "active":
            results.append({"id": rec.id, "outcome": "purged", "withdrawn": []})
            continue
        names = [p.purpose for p in rec.purposes
                 if p.legal_basis in OBJECTION_BASES and p.withdrawn_at is None]
        if names:
            rec = await retention.withdraw_purposes(services, actor, origin, rec.id, names,
                                                    reason, {"objection": True})
        kept = [s.purpose for s in policy.states_of(rec) if s.active(now)]
        results.append({"id": rec.id, "outcome": "withdrawn" if names else "unchanged",
                        "withdrawn": names, "still_kept_for": kept,
                        "purge_at": rfc3339(rec.purge_at)})
    return results


# --- rectification -----------------------------------------------------------------------

RECTIFIABLE = ("agent_id", "customer_id", "phone_number", "queue", "direction", "ended_at")


def parse_rectification(body: dict[str, Any], started_at: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    unknown = sorted(set(body) - set(RECTIFIABLE) - {"reason", "request_reference"})
    if unknown:
        raise BadRequest("invalid_metadata", f"not rectifiable: {', '.join(unknown)}")
    for name in RECTIFIABLE:
        if name not in body:
            continue
        value = body[name]
        if name == "ended_at":
            value = None if value is None else parse_time(value, "ended_at")
            if value is not None and value < started_at:
                raise BadRequest("invalid_metadata", "ended_at is before started_at")
        elif name == "direction":
            if value not in (None, "inbound", "outbound"):
                raise BadRequest("invalid_metadata", "direction must be inbound or outbound")
        else:
            value = optional_text(value, name, TEXT_FIELDS[name], "invalid_metadata")
            if name in PATH_IDENTIFIERS:
                fields.refuse_dot_segment(value, name, "invalid_metadata")
        changes[name] = value
    if not changes:
        raise BadRequest("invalid_metadata", f"give at least one of {', '.join(RECTIFIABLE)}")
    return changes


async def rectify(services: Services, actor: Actor, origin: Origin, recording_id: str,
                  body: dict[str, Any]) -> catalog.Recording:
    reason = retention.require_reason(body)
    async with services.database.write() as conn:
        rec = retention.active_or_raise(await catalog.lock_recording(conn, recording_id))
        changes = parse_rectification(body, rec.started_at)
        changed = sorted(k for k, v in changes.items() if getattr(rec, k) != v)
        if changed:
            values = {k: changes[k] for k in changed}
            if "customer_id" in values:
                new_id = values["customer_id"]
                values["subject_ref"] = services.subject_ref(new_id) if new_id else None
            await retention_store.update_metadata(conn, rec.id, values)
            if changes.get("customer_id"):
                for hold_id in await retention_store.active_customer_holds(
                        conn, changes["customer_id"]):
                    if hold_id not in {h for h, _ in rec.legal_holds}:
                        await retention_store.link_hold(conn, hold_id, [rec.id])
        # Field names only: the wrong values and the right ones stay out of the log.
        await auditing.append(services, conn, auditing.event(
            actor, origin, "rectify", "allowed", recording_id=rec.id, reason=reason,
            detail={"fields": changed, "request_reference": body.get("request_reference")}))
        updated = await catalog.get_recording(conn, rec.id)
    assert updated is not None
    return updated
