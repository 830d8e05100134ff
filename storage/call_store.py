"""Call records and what coverage counts of them: each query through an index that
``call_records`` declares (schema.py), so its cost follows the page or the period asked
for, never the number of calls kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import keyset
from storage.database import Conn
from storage.schema import call_records, recordings

# The states a call is in once reconciled; "pending" before, "not_expected" never counted.
DECIDED = ("recorded", "missing", "short", "partial")
STATUSES = ("pending", *DECIDED, "not_expected")


@dataclass(frozen=True)
class CallRecord:
    id: str
    source: str
    call_id: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    direction: str | None
    agent_id: str | None
    queue: str | None
    customer_id: str | None
    phone_number: str | None
    expect_recording: bool
    status: str
    recorded_seconds: float | None
    checked_at: datetime | None
    created_at: datetime


def _record(row: Any) -> CallRecord:
    return CallRecord(**row._asdict())


async def insert_new(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Inserts the rows whose (source, call_id) is not stored yet; a concurrent writer of
    the same record makes this one a no-op, never an error."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(call_records).on_conflict_do_nothing(
        index_elements=["source", "call_id"])
    await conn.execute(statement, list(rows))


async def by_call_ids(conn: Conn, call_ids: Sequence[str]) -> list[CallRecord]:
    query = select(call_records).where(call_records.c.call_id.in_(list(call_ids)))
    return [_record(r) for r in await conn.execute(query)]


@dataclass(frozen=True)
class Audio:
    """A recording kept for a call, as coverage weighs it."""
    recording_id: str
    leg: str  # caller, callee, mixed
    seconds: float | None  # None: a format whose length the service cannot read
    audio_check: str | None


async def audio_of(conn: Conn, call_ids: Sequence[str]) -> dict[str, list[Audio]]:
    """Per call id: the recordings kept for it, by leg, through the recordings' unique
    (call_id, leg) index (a tombstone names no call)."""
    r = recordings.c
    query = select(r.call_id, r.id, r.leg, r.duration_seconds, r.audio_check).where(
        r.call_id.in_(list(call_ids))).order_by(r.call_id, r.leg)
    found: dict[str, list[Audio]] = {}
    for call_id, recording_id, leg, seconds, check in await conn.execute(query):
        found.setdefault(call_id, []).append(Audio(recording_id, leg, seconds, check))
    return found


async def due(conn: Conn, ended_before: datetime, limit: int) -> list[CallRecord]:
    """Pending calls that ended before ``ended_before``: the (status, ended_at) index."""
    c = call_records.c
    query = (select(call_records).where(c.status == "pending", c.ended_at <= ended_before)
             .order_by(c.ended_at).limit(limit))
    return [_record(r) for r in await conn.execute(query)]


async def set_status(conn: Conn, record_id: str, status: str, seconds: float | None,
                     now: datetime) -> None:
    await conn.execute(update(call_records).where(call_records.c.id == record_id).values(
        status=status, recorded_seconds=seconds, checked_at=now))


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    source: str | None = None
    queue: str | None = None


def _in(query: Select[Any], period: Period) -> Select[Any]:
    c = call_records.c
    query = query.where(c.started_at >= period.since, c.started_at < period.until)
    if period.source is not None:
        query = query.where(c.source == period.source)
    if period.queue is not None:
        query = query.where(c.queue == period.queue)
    return query


def utc_day(conn: Conn, column: ColumnElement[Any]) -> ColumnElement[str]:
    """The UTC date of a time column as YYYY-MM-DD (SQLite keeps times as UTC text)."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


async def counts(conn: Conn, period: Period) -> list[tuple[str, str, str, int]]:
    """(day, source, status, calls) over the period: a range of the index holding
    (started_at, source, queue, status), read without the table."""
    c = call_records.c
    day = utc_day(conn, c.started_at)
    query = _in(select(day, c.source, c.status, func.count()), period).group_by(
        day, c.source, c.status).order_by(day, c.source, c.status)
    return [(str(d), s, st, int(n)) for d, s, st, n in await conn.execute(query)]


async def page(conn: Conn, period: Period, status: str | None, call_id: str | None,
               before: tuple[datetime, str] | None, limit: int) -> list[CallRecord]:
    """Newest call first, keyset-paged: by call id through its index, else a range of the
    (status | source | queue | nothing, started_at, id) index the filters name."""
    c = call_records.c
    query = _in(select(call_records), period)
    if status is not None:
        query = query.where(c.status == status)
    if call_id is not None:
        query = query.where(c.call_id == call_id)
    if before is not None:
        query = query.where(keyset.before(c.started_at, c.id, before))
    query = query.order_by(c.started_at.desc(), c.id.desc()).limit(limit)
    return [_record(r) for r in await conn.execute(query)]


def _unmatched(period: Period, matched_before: datetime) -> Select[Any]:
    """Recordings of the period, in the store since before ``matched_before``, that no call
    record names: the recordings' (started_at, id) range, a call_id probe each."""
    r, c = recordings.c, call_records.c
    query = select(r.id, r.call_id, r.leg, r.started_at, r.duration_seconds, r.queue,
                   r.audio_check).where(
        r.started_at >= period.since, r.started_at < period.until,
        r.created_at <= matched_before, r.call_id.is_not(None),
        ~select(literal(1)).where(c.call_id == r.call_id).exists())
    if period.queue is not None:
        query = query.where(r.queue == period.queue)
    return query


async def unmatched_days(conn: Conn, period: Period,
                         matched_before: datetime) -> list[tuple[str, int]]:
    day = utc_day(conn, recordings.c.started_at)
    inner = _unmatched(period, matched_before).add_columns(day.label("day")).subquery()
    query = select(inner.c.day, func.count()).group_by(inner.c.day).order_by(inner.c.day)
    return [(str(d), int(n)) for d, n in await conn.execute(query)]


async def unmatched_page(conn: Conn, period: Period, matched_before: datetime,
                         before: tuple[datetime, str] | None, limit: int) -> list[Any]:
    r = recordings.c
    query = _unmatched(period, matched_before)
    if before is not None:
        query = query.where(keyset.before(r.started_at, r.id, before))
    query = query.order_by(r.started_at.desc(), r.id.desc()).limit(limit)
    return list(await conn.execute(query))


async def of_customer(conn: Conn, customer_id: str) -> list[CallRecord]:
    c = call_records.c
    query = select(call_records).where(c.customer_id == customer_id).order_by(
        c.started_at, c.id)
    return [_record(r) for r in await conn.execute(query)]


async def delete_of_customer(conn: Conn, customer_id: str) -> int:
    result = await conn.execute(delete(call_records).where(
        call_records.c.customer_id == customer_id))
    return int(result.rowcount)


async def delete_started_before(conn: Conn, cutoff: datetime, limit: int) -> int:
    """Up to ``limit`` of the oldest records started before ``cutoff``."""
    c = call_records.c
    oldest = select(c.id).where(c.started_at < cutoff).order_by(c.started_at, c.id).limit(
        limit)
    ids = [r[0] for r in await conn.execute(oldest)]
    if ids:
        await conn.execute(delete(call_records).where(c.id.in_(ids)))
    return len(ids)

