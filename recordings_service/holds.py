"""Legal holds: named matters that stop purge and erasure of the recordings they cover."""

from __future__ import annotations

import secrets
from typing import Any

from recordings_service import auditing, worm
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Conflict, NotFound
from recordings_service.fields import DOT_SEGMENTS, is_text
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.services import Services
from storage import catalog, retention_store
from storage.limits import IDENTIFIER, REASON
from storage.retention_store import Hold

MAX_IDS = 10_000


def hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id, "case_reference": hold.case_reference, "reason": hold.reason,
        "placed_at": rfc3339(hold.placed_at), "placed_by": hold.placed_by,
        "recording_ids": list(hold.recording_ids), "customer_id": hold.customer_id,
        "released_at": rfc3339(hold.released_at), "released_by": hold.released_by,
        "release_reason": hold.release_reason,
    }


async def list_page(services: Services, cursor: str | None,
                    limit: int) -> tuple[list[Hold], str | None]:
    """Holds in the order they were placed, keyset-paged."""
    async with services.database.read() as conn:
        found = await retention_store.list_holds(conn, decode_cursor(cursor), limit + 1)
    return page_of(found, limit, lambda h: (h.placed_at, h.id))


async def get(services: Services, hold_id: str) -> Hold:
    async with services.database.read() as conn:
        hold = await retention_store.get_hold(conn, hold_id)
    if hold is None:
        raise NotFound("no such legal hold")
    return hold


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name}_required",
                         f"{name} is required (a string of at most {limit} characters)")
    return value.strip()


async def place(services: Services, actor: Actor, origin: Origin,
                body: dict[str, Any]) -> Hold:
    case_reference = _text(body, "case_reference", IDENTIFIER)
    reason = _text(body, "reason", REASON)
    # Exactly one of the two keys; a key that is present must hold a value (null is not
    # "absent": a client sending it has a bug worth hearing about).
    if ("recording_ids" in body) == ("customer_id" in body):
        raise BadRequest("invalid_hold", "give either recording_ids or customer_id")
    ids, customer_id = body.get("recording_ids"), body.get("customer_id")
    if "recording_ids" in body and ids is None:
        raise BadRequest("invalid_hold", "recording_ids must be a non-empty list of ids")
    if "customer_id" in body and customer_id is None:
        raise BadRequest("invalid_hold", "customer_id must be a non-empty string")
    if ids is not None and (not isinstance(ids, list) or not ids or len(ids) > MAX_IDS
                            or not all(isinstance(i, str) for i in ids)):
        raise BadRequest("invalid_hold", "recording_ids must be a non-empty list of ids")
    if customer_id is not None and (not is_text(customer_id, IDENTIFIER) or not customer_id
                                    or customer_id in DOT_SEGMENTS):
        raise BadRequest("invalid_hold", f"customer_id must be a non-empty string of at most "
                                         f"{IDENTIFIER} printable characters")
    hold_id = "hold_" + secrets.token_urlsafe(12)
    async with services.database.write() as conn:
        if customer_id is not None:
            covered = await retention_store.recording_ids_of_customer(conn, customer_id)
        else:
            covered = list(dict.fromkeys(ids or []))
        for recording_id in covered:
            rec = await catalog.lock_recording(conn, recording_id)
            if rec is None:
                raise BadRequest("unknown_recording", "a recording id does not exist")
            if rec.state != "active":
                raise Conflict("purged", "a recording in the list has been purged already")
            await worm.hold(services, rec, True)
        await retention_store.insert_hold(conn, hold_id, case_reference, reason,
                                          services.clock(), actor.name, customer_id, covered)
        for recording_id in covered:
            await auditing.append(services, conn, auditing.event(
                actor, origin, "legal_hold_placed", "allowed", recording_id=recording_id,
                reason=reason, detail={"hold_id": hold_id, "case_reference": case_reference}))
        if not covered:
            await auditing.append(services, conn, auditing.event(
                actor, origin, "legal_hold_placed", "allowed", reason=reason,
                detail={"hold_id": hold_id, "case_reference": case_reference,
                        "by_customer": True}))
        hold = await retention_store.get_hold(conn, hold_id)
    assert hold is not None
    return hold


async def release(services: Services, actor: Actor, origin: Origin, hold_id: str,
                  reason: str) -> Hold:
    async with services.database.write() as conn:
        hold = await retention_store.get_hold(conn, hold_id)
        if hold is None:
            raise NotFound("no such legal hold")
        if not await retention_store.release_hold(conn, hold_id, services.clock(), actor.name,
                                                  reason):
            raise Conflict("already_released", "this legal hold was released already")
        for rec in await catalog.get_recordings(conn, hold.recording_ids):
            if not rec.legal_holds and rec.state == "active":  # no other hold stands
                await worm.hold(services, rec, False)
        for recording_id in hold.recording_ids or (None,):
            await auditing.append(services, conn, auditing.event(
                actor, origin, "legal_hold_released", "allowed", recording_id=recording_id,
                reason=reason, detail={"hold_id": hold_id,
                                       "case_reference": hold.case_reference}))
        released = await retention_store.get_hold(conn, hold_id)
    assert released is not None
    return released
