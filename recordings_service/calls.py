"""Call records and coverage: every call the PBXs report is matched to its recording, so
that a call never recorded, or recorded short, is counted and seen, not found out in a
dispute months later.

A record arrives (POST /v1/calls), waits ``[coverage] grace_minutes`` past the call's end
(recordings of a spool that waited for the service come late), and is then reconciled:
``recorded``, ``short`` (the recording is under ``min_ratio`` of the answered call),
``partial`` (one leg recorded, the other not: a recording names its ``leg``, caller,
callee or mixed) or ``missing``. A recording that arrives later still moves its call to
``recorded``. A call never answered, or one the policy does not record
(``expect_recording: false``), is ``not_expected`` and never counted. Recordings that no
call record names, once they are ``grace_minutes`` old, are ``unmatched``.

Calls are matched to recordings by call id alone: recordings do not name their PBX, so
the call ids of all sources must not collide (PBX call ids are UUIDs or carry the host).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recordings_service import auditing
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import BadRequest
from recordings_service.fields import optional_text, refuse_dot_segment, required_text
from recordings_service.pagination import decode_cursor, encode_cursor
from recordings_service.services import Services
from recordings_service.times import parse_time, rfc3339
from storage import call_store
from storage.call_store import DECIDED, Audio, CallRecord, Period
from storage.database import Conn
from storage.limits import IDENTIFIER, PHONE_NUMBER

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_BODY = 1024 * 1024
DEFAULT_SOURCE = "default"
MAX_DAYS = 366  # a coverage report reads every call of its period (index only)
DEFAULT_DAYS = 7
STATUSES = (*call_store.STATUSES, "unmatched")
_TEXT_FIELDS = {"source": IDENTIFIER, "agent_id": IDENTIFIER, "queue": IDENTIFIER,
                "customer_id": IDENTIFIER, "phone_number": PHONE_NUMBER}
_FIELDS = {"call_id", "started_at", "answered_at", "ended_at", "direction",
           "expect_recording", *_TEXT_FIELDS}
# How many due calls one transaction reconciles.
BATCH = 500


def _invalid(where: str, detail: str) -> BadRequest:
    return BadRequest("invalid_call_record", f"{where}: {detail}")


def parse_record(raw: Any, where: str) -> dict[str, Any]:
    """One call record as catalog values (without id, status and times of our own); the
    error names the record and the field, never a value."""
    if not isinstance(raw, dict):
        raise _invalid(where, "a call record is a JSON object")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise _invalid(where, f"unknown fields: {', '.join(unknown)}")
    reason = "invalid_call_record"
    try:
        call_id = required_text(raw.get("call_id"), "call_id", IDENTIFIER, reason)
        texts = {name: optional_text(raw.get(name), name, limit, reason)
                 for name, limit in _TEXT_FIELDS.items()}
        refuse_dot_segment(call_id, "call_id", reason)
        times = {name: None if raw.get(name) is None else parse_time(raw[name], name, reason)
                 for name in ("started_at", "answered_at", "ended_at")}
    except BadRequest as exc:
        raise _invalid(where, exc.detail) from None
    started, answered, ended = times["started_at"], times["answered_at"], times["ended_at"]
    if started is None or ended is None:
        raise _invalid(where, "started_at and ended_at are required")
    if ended < started or (answered is not None and not started <= answered <= ended):
        raise _invalid(where, "the times must run started_at <= answered_at <= ended_at")
    direction = raw.get("direction")
    if direction is not None and direction not in ("inbound", "outbound"):
        raise _invalid(where, "direction must be inbound or outbound")
    expect = raw.get("expect_recording", True)
    if not isinstance(expect, bool):
        raise _invalid(where, "expect_recording must be true or false")
    return {**texts, "source": texts["source"] or DEFAULT_SOURCE, "call_id": call_id,
            "started_at": started, "answered_at": answered, "ended_at": ended,
            "direction": direction, "expect_recording": expect}


def parse_batch(body: Any) -> list[dict[str, Any]]:
    """One record, or a list of up to MAX_BATCH; any bad record refuses the whole batch
    (nothing is stored), naming it by its place."""
    if isinstance(body, dict):
        return [parse_record(body, "the call record")]
    if not isinstance(body, list) or not body:
        raise BadRequest("invalid_call_record",
                         "the body is a call record or a non-empty list of them")
    if len(body) > MAX_BATCH:
        raise BadRequest("invalid_call_record",
                         f"at most {MAX_BATCH} call records in one request")
    return [parse_record(raw, f"record {i}") for i, raw in enumerate(body)]


def _same(stored: CallRecord, given: Mapping[str, Any]) -> bool:
    return all(getattr(stored, name) == value for name, value in given.items())


@dataclass(frozen=True)
class Accepted:
    source: str
    call_id: str
    outcome: str  # stored, unchanged (sent before), conflict (sent before, differently)
    status: str


async def receive(services: Services, actor: Actor, origin: Origin,
                  records: Sequence[dict[str, Any]]) -> list[Accepted]:
    """Stores the records not stored yet, idempotent on (source, call_id): a PBX re-sends
    what it is unsure was taken. A record sent again with other content keeps the first
    (``conflict``): a call record is a fact about a call, not a document to edit."""
    now = services.clock()
    unique = {(r["source"], r["call_id"]): r for r in records}
    rows = []
    for given in unique.values():
        expected = given["expect_recording"] and given["answered_at"] is not None
        rows.append({**given, "id": "call_" + secrets.token_urlsafe(16),
                     "status": "pending" if expected else "not_expected",
                     "recorded_seconds": None, "checked_at": None, "created_at": now})
    call_ids = sorted({r["call_id"] for r in rows})
    async with services.database.write() as conn:
        await call_store.insert_new(conn, rows)
        stored = {(r.source, r.call_id): r for r in await call_store.by_call_ids(conn, call_ids)}
        ours = {row["id"] for row in rows}
        await auditing.append(services, conn, auditing.event(
            actor, origin, "call_records", "allowed",
            detail={"received": len(records),
                    "stored": sum(1 for r in stored.values() if r.id in ours)}))
    result = []
    for key, given in unique.items():
        record = stored[key]
        outcome = ("stored" if record.id in ours
                   else "unchanged" if _same(record, given) else "conflict")
        result.append(Accepted(record.source, record.call_id, outcome, record.status))
    return result


def _known_longest(audio: Sequence[Audio]) -> float | None:
    lengths = [a.seconds for a in audio if a.seconds is not None]
    return max(lengths) if lengths else None


def _decide(record: CallRecord, audio: Sequence[Audio], min_ratio: float,
            ) -> tuple[str, float | None]:
    """The call's status and the seconds of it recorded. A mixed recording holds the whole
    call; separate legs hold it only together, as far as the shorter one goes."""
    if not audio:
        return "missing", None
    mixed = [a for a in audio if a.leg == "mixed"]
    sides = {a.leg: a for a in audio if a.leg != "mixed"}
    if mixed:
        seconds = _known_longest(mixed)
    elif len(sides) == 2:
        lengths = [a.seconds for a in sides.values()]
        # A format whose length the service cannot read: it cannot tell, so none.
        seconds = None if None in lengths else min(x for x in lengths if x is not None)
    else:
        return "partial", _known_longest(audio)
    assert record.answered_at is not None  # only answered calls are pending
    answered = (record.ended_at - record.answered_at).total_seconds()
    # A length it cannot read counts as recorded: the service cannot tell.
    if seconds is not None and seconds < min_ratio * answered:
        return "short", seconds
    return "recorded", seconds


async def _rematch(services: Services, conn: Conn, records: Sequence[CallRecord],
                   now: datetime) -> Counter[tuple[str, str]]:
    audio = await call_store.audio_of(conn, [r.call_id for r in records])
    decided: Counter[tuple[str, str]] = Counter()
    for record in records:
        status, seconds = _decide(record, audio.get(record.call_id, []),
                                  services.config.coverage_min_ratio)
        await call_store.set_status(conn, record.id, status, seconds, now)
        decided[(record.source, status)] += 1
    return decided


async def recording_arrived(services: Services, conn: Conn, call_id: str) -> None:
    """In the upload's transaction: a call already found missing, short or partial is
    matched again now (its recording, or its other leg, came late). Pending calls wait for
    their turn."""
    late = [r for r in await call_store.by_call_ids(conn, [call_id])
            if r.status in ("missing", "short", "partial")]
    if late:
        for (source, status), n in (await _rematch(services, conn, late,
                                                   services.clock())).items():
            services.metrics.calls.labels(source, status).inc(n)


async def reconcile(services: Services) -> dict[str, int]:
    """Decides every pending call past its grace, BATCH per transaction; then refreshes
    the coverage gauges over the last 24 hours. Returns the counts decided now."""
    now = services.clock()
    cutoff = now - timedelta(minutes=services.config.coverage_grace_minutes)
    total: Counter[str] = Counter()
    while True:
        async with services.database.write() as conn:
            due = await call_store.due(conn, cutoff, BATCH)
            decided = await _rematch(services, conn, due, now) if due else Counter()
        for (source, status), n in decided.items():
            services.metrics.calls.labels(source, status).inc(n)
            total[status] += n
        if len(due) < BATCH:
            break
    await _refresh_gauges(services, now)
    counts = {status: total.get(status, 0) for status in DECIDED}
    if any(counts.values()):
        log.info("reconciled call records", extra=counts)
    return counts


async def _refresh_gauges(services: Services, now: datetime) -> None:
    async with services.database.read() as conn:
        rows = await call_store.counts(conn, Period(now - timedelta(days=1), now))
    by_status: Counter[str] = Counter()
    for _day, _source, status, n in rows:
        by_status[status] += n
    services.metrics.coverage.set(_ratio(by_status) or 1.0)
    for status in ("missing", "short", "partial"):
        services.metrics.coverage_gaps.labels(status).set(by_status[status])


def _ratio(counts: Mapping[str, int]) -> float | None:
    decided = sum(counts.get(s, 0) for s in DECIDED)
    return round(counts.get("recorded", 0) / decided, 4) if decided else None


async def purge_expired(services: Services) -> int:
    """Deletes the call records older than ``[coverage] retention_days`` (by the call's
    start), ``purge_batch`` per transaction; the count goes into the purge run."""
    cutoff = services.clock() - timedelta(days=services.config.coverage_retention_days)
    removed = 0
    while True:
        async with services.database.write() as conn:
            n = await call_store.delete_started_before(conn, cutoff, services.config.purge_batch)
        removed += n
        if n < services.config.purge_batch:
            return removed


def period(services: Services, since: datetime | None, until: datetime | None,
           source: str | None, queue: str | None) -> Period:
    until = until or services.clock()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if not timedelta(0) < until - since <= timedelta(days=MAX_DAYS):
        raise BadRequest("invalid_query", f"from must be before to, at most {MAX_DAYS} "
                                          f"days apart")
    return Period(since, until, source, queue)


async def coverage(services: Services, where: Period) -> dict[str, Any]:
    """Counts per status over the period, in all and per UTC day and source, with the
    share of the answered calls recorded in full. Unmatched recordings cannot be given a
    source: with a ``source`` filter they are not counted."""
    grace = timedelta(minutes=services.config.coverage_grace_minutes)
    async with services.database.long_read() as conn:
        rows = await call_store.counts(conn, where)
        orphans = ([] if where.source is not None else
                   await call_store.unmatched_days(conn, where, services.clock() - grace))
    total: Counter[str] = Counter()
    days: dict[tuple[str, str | None], Counter[str]] = {}
    for day, source, status, n in rows:
        total[status] += n
        days.setdefault((day, source), Counter())[status] += n
    for day, n in orphans:
        total["unmatched"] += n
        days.setdefault((day, None), Counter())["unmatched"] += n
    return {
        "from": rfc3339(where.since), "to": rfc3339(where.until),
        "counts": _counts(total), "ratio": _ratio(total),
        "days": [{"date": day, "source": source, "counts": _counts(c), "ratio": _ratio(c)}
                 for (day, source), c in sorted(days.items(), key=_day_order)],
    }


def _day_order(item: tuple[tuple[str, str | None], Any]) -> tuple[str, str]:
    (day, source), _ = item
    return day, source or ""


def _counts(found: Mapping[str, int]) -> dict[str, int]:
    return {status: found.get(status, 0) for status in STATUSES}


_CHECKS = (None, "ok", "one_sided", "silent")


def call_audio_check(recorded: Sequence[Audio]) -> str | None:
    """A call's silence check: its mixed recording's (the worst, should there be more);
    else, recorded as legs, ``one_sided`` when a leg is silent and another heard, or the
    worst of theirs."""
    mixed = [a.audio_check for a in recorded if a.leg == "mixed"]
    if mixed:
        return max(mixed, key=_CHECKS.index)
    sides = [a.audio_check for a in recorded]
    if "silent" in sides and ("ok" in sides or "one_sided" in sides):
        return "one_sided"
    return max(sides, key=_CHECKS.index, default=None)


def record_json(record: CallRecord, recorded: Sequence[Audio],
                with_phone: bool) -> dict[str, Any]:
    shown = {
        "id": record.id, "source": record.source, "call_id": record.call_id,
        "status": record.status, "started_at": rfc3339(record.started_at),
        "answered_at": rfc3339(record.answered_at) if record.answered_at else None,
        "ended_at": rfc3339(record.ended_at), "direction": record.direction,
        "agent_id": record.agent_id, "queue": record.queue,
        "customer_id": record.customer_id, "expect_recording": record.expect_recording,
        "recorded_seconds": record.recorded_seconds,
        "checked_at": rfc3339(record.checked_at) if record.checked_at else None,
        "recordings": [a.recording_id for a in recorded],
        "legs": [{"id": a.recording_id, "leg": a.leg} for a in recorded],
        "audio_check": call_audio_check(recorded),
    }
    if with_phone:
        shown["phone_number"] = record.phone_number
    return shown


async def listing(services: Services, actor: Actor, origin: Origin, where: Period,
                  status: str | None, call_id: str | None, cursor: str | None,
                  limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Calls of the period, newest first; ``status=unmatched`` lists the recordings no
    call record names instead. Audited: the list shows agents and customers."""
    if status is not None and status not in STATUSES:
        raise BadRequest("invalid_query", f"status must be one of {', '.join(STATUSES)}")
    position = decode_cursor(cursor)
    with_phone = "compliance" in actor.roles
    # Off the loop: a rare filter (few unmatched in a year) may read far to fill a page.
    async with services.database.long_read() as conn:
        if status == "unmatched":
            grace = timedelta(minutes=services.config.coverage_grace_minutes)
            found = await call_store.unmatched_page(conn, where, services.clock() - grace,
                                                    position, limit + 1)
            items = [{"id": None, "source": None, "call_id": r.call_id,
                      "status": "unmatched", "started_at": rfc3339(r.started_at),
                      "queue": r.queue, "recorded_seconds": r.duration_seconds,
                      "recordings": [r.id], "legs": [{"id": r.id, "leg": r.leg}],
                      "audio_check": r.audio_check}
                     for r in found[:limit]]
            last = (found[limit - 1].started_at, found[limit - 1].id) \
                if len(found) > limit else None
        else:
            records = await call_store.page(conn, where, status, call_id, position,
                                            limit + 1)
            recordings = await call_store.audio_of(conn, [r.call_id for r in records[:limit]])
            items = [record_json(r, recordings.get(r.call_id, []), with_phone)
                     for r in records[:limit]]
            last = (records[limit - 1].started_at, records[limit - 1].id) \
                if len(records) > limit else None
    await auditing.record(services, auditing.event(
        actor, origin, "calls_read", "allowed",
        detail={"status": status, "from": rfc3339(where.since), "to": rfc3339(where.until),
                "count": len(items)}))
    return items, encode_cursor(*last) if last else None
