"""Catalog queries of data-subject requests and subject references."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from storage import keyset
from storage.database import Conn
from storage.schema import audit_entries, subject_requests


@dataclass(frozen=True)
class SubjectRequest:
    id: str
    type: str
    customer_id: str
    request_reference: str | None
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    outcome: dict[str, Any] | None
    registered_by: str


def _request(row: Any) -> SubjectRequest:
    return SubjectRequest(row.id, row.type, row.customer_id, row.request_reference,
                          row.received_at, row.due_at, row.completed_at,
                          json.loads(row.outcome) if row.outcome else None, row.registered_by)


async def insert_request(conn: Conn, request: SubjectRequest) -> None:
    await conn.execute(insert(subject_requests).values(
        id=request.id, type=request.type, customer_id=request.customer_id,
        request_reference=request.request_reference, received_at=request.received_at,
        due_at=request.due_at, registered_by=request.registered_by))


async def by_reference(conn: Conn, reference: str) -> SubjectRequest | None:
    """The request registered under ``reference`` (the first, where an older release let
    a reference be registered twice)."""
    c = subject_requests.c
    row = (await conn.execute(select(subject_requests).where(c.request_reference == reference)
                              .order_by(c.received_at, c.id).limit(1))).first()
    return None if row is None else _request(row)


async def complete_request(conn: Conn, request_id: str, now: datetime,
                           outcome: dict[str, Any]) -> None:
    await conn.execute(update(subject_requests).where(subject_requests.c.id == request_id)
                       .values(completed_at=now, outcome=json.dumps(outcome)))


async def get_request(conn: Conn, request_id: str) -> SubjectRequest | None:
    row = (await conn.execute(select(subject_requests).where(
        subject_requests.c.id == request_id))).first()
    return None if row is None else _request(row)


async def list_requests(conn: Conn, open_only: bool, customer_id: str | None,
                        after: tuple[datetime, str] | None, limit: int) -> list[SubjectRequest]:
    c = subject_requests.c
    query = select(subject_requests).order_by(c.received_at, c.id).limit(limit)
    if open_only:
        query = query.where(c.completed_at.is_(None))
    if customer_id is not None:
        query = query.where(c.customer_id == customer_id)
    if after is not None:
        query = query.where(keyset.after(c.received_at, c.id, after))
    return [_request(r) for r in await conn.execute(query)]


async def count_overdue(conn: Conn, now: datetime) -> int:
    c = subject_requests.c
    return int((await conn.execute(select(func.count()).select_from(subject_requests).where(
        c.completed_at.is_(None), c.due_at < now))).scalar_one())


async def access_summary(conn: Conn,
                         recording_ids: list[str]) -> list[tuple[str, str, str, str | None,
                                                                 int, datetime]]:
    """(recording, actor, action, purpose, count, last time) of allowed accesses."""
    c = audit_entries.c
    rows = await conn.execute(
        select(c.recording_id, c.actor, c.action, c.purpose, func.count(), func.max(c.at))
        .where(c.recording_id.in_(recording_ids), c.outcome == "allowed",
               c.action.in_(["stream", "view_metadata", "playback_link"]))
        .group_by(c.recording_id, c.actor, c.action, c.purpose)
        .order_by(c.recording_id, c.actor, c.action, c.purpose))
    return [(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]
