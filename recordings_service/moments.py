"""Moments: a point or a span of a call a person marks with a short note, for a purpose.

Marking and reading moments are accesses to the call like listening to it: the purpose
must be one the policy allows the person on this recording now (restriction included),
and the decision is in the audit log first. The log names the moment and where it is,
never its note: a note is personal data about the call and goes with it (purge, erasure),
which an append-only log could not.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from recordings_service import access, auditing
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import BadRequest, Conflict, Forbidden, NotFound
from recordings_service.fields import is_text
from recordings_service.services import Services
from recordings_service.times import rfc3339
from storage import catalog, moment_store
from storage.moment_store import Moment

NOTE = 500
# Per recording: a review marks a handful; thousands would be a script, not a person.
MAX_PER_RECORDING = 500


def moment_json(m: Moment) -> dict[str, Any]:
    return {"id": m.id, "recording_id": m.recording_id, "purpose": m.purpose,
            "author": m.author, "at_seconds": m.at_seconds, "end_seconds": m.end_seconds,
            "note": m.note, "created_at": rfc3339(m.created_at)}


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise BadRequest("invalid_moment", f"{name} must be a number of seconds, 0 or more")
    return round(float(value), 3)


def _parsed(body: dict[str, Any]) -> tuple[float, float | None, str]:
    at = _seconds(body.get("at_seconds"), "at_seconds")
    end = None if body.get("end_seconds") is None else _seconds(body["end_seconds"],
                                                                 "end_seconds")
    if end is not None and end <= at:
        raise BadRequest("invalid_moment", "end_seconds must be after at_seconds")
    note = body.get("note")
    if not is_text(note, NOTE) or not str(note).strip():
        raise BadRequest("invalid_moment", f"note must be a string of 1 to {NOTE} printable "
                                           f"characters")
    return at, end, str(note).strip()


async def add(services: Services, actor: Actor, origin: Origin, recording_id: str,
              body: dict[str, Any]) -> Moment:
    at, end, note = _parsed(body)
    purpose = body.get("purpose")
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
        known = 0 if rec is None else await moment_store.count_of(conn, rec.id,
                                                                    MAX_PER_RECORDING)
    if rec is not None and rec.duration_seconds is not None \
            and max(at, end or 0) > rec.duration_seconds + 0.5:
        raise BadRequest("invalid_moment", "the moment lies past the end of the call")
    if known >= MAX_PER_RECORDING:
        raise Conflict("too_many_moments",
                       f"a recording holds at most {MAX_PER_RECORDING} moments")
    moment_id = "mom_" + secrets.token_urlsafe(12)
    rec = await access.authorize_audio(
        services, actor, origin, "moment_add", recording_id,
        purpose if isinstance(purpose, str) else None,
        {"moment_id": moment_id, "at_seconds": at, "end_seconds": end})
    assert isinstance(purpose, str)  # authorized
    moment = Moment(moment_id, rec.id, purpose, actor.name, at, end, note, services.clock())
    async with services.database.write() as conn:
        await moment_store.insert_moment(conn, moment)
    services.metrics.moments.inc()
    return moment


async def of_recording(services: Services, actor: Actor, origin: Origin, recording_id: str,
                       purpose: str | None) -> list[Moment]:
    """The moments made for any purpose the reader may use on this call now; read for
    ``purpose``, which is checked and audited as an access."""
    rec = await access.authorize_audio(services, actor, origin, "moments_read", recording_id,
                                       purpose, {})
    allowed = access.allowed_purposes(services, actor, rec)
    async with services.database.read() as conn:
        return await moment_store.moments_of(conn, [rec.id], allowed)


async def remove(services: Services, actor: Actor, origin: Origin, recording_id: str,
                 moment_id: str) -> None:
    """By its author, or by compliance."""
    async with services.database.read() as conn:
        moment = await moment_store.get_moment(conn, moment_id)
    if moment is None or moment.recording_id != recording_id:
        raise NotFound("no such moment on this recording")
    if moment.author != actor.name and "compliance" not in actor.roles:
        await auditing.record(services, auditing.event(
            actor, origin, "moment_deleted", "denied", recording_id=recording_id,
            purpose=moment.purpose, reason="not_the_author", detail={"moment_id": moment_id}))
        raise Forbidden("not_the_author", "only its author or compliance removes a moment")
    async with services.database.write() as conn:
        if await moment_store.delete_moment(conn, moment_id):
            await auditing.append(services, conn, auditing.event(
                actor, origin, "moment_deleted", "allowed", recording_id=recording_id,
                purpose=moment.purpose, detail={"moment_id": moment_id}))
