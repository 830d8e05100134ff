"""Moments marked in calls: each read through the (recording, position) index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from storage.database import Conn
from storage.schema import moments


@dataclass(frozen=True)
class Moment:
    id: str
    recording_id: str
    purpose: str
    author: str
    at_seconds: float
    end_seconds: float | None
    note: str
    created_at: datetime


def _moment(row: Any) -> Moment:
    return Moment(**row._asdict())


async def insert_moment(conn: Conn, moment: Moment) -> None:
    await conn.execute(insert(moments), [moment.__dict__])


async def count_of(conn: Conn, recording_id: str, cap: int) -> int:
    limited = select(moments.c.id).where(moments.c.recording_id == recording_id).limit(cap)
    return int((await conn.execute(select(func.count()).select_from(limited.subquery())
                                   )).scalar_one())


async def moments_of(conn: Conn, recording_ids: Sequence[str],
                     purposes: Sequence[str] | None = None) -> list[Moment]:
    """In each recording's order of position; only those made for ``purposes`` if given."""
    c = moments.c
    query = select(moments).where(c.recording_id.in_(list(recording_ids))).order_by(
        c.recording_id, c.at_seconds, c.id)
    if purposes is not None:
        query = query.where(c.purpose.in_(list(purposes)))
    return [_moment(r) for r in await conn.execute(query)]


async def get_moment(conn: Conn, moment_id: str) -> Moment | None:
    row = (await conn.execute(select(moments).where(moments.c.id == moment_id))).first()
    return None if row is None else _moment(row)


async def delete_moment(conn: Conn, moment_id: str) -> bool:
    return bool((await conn.execute(delete(moments).where(moments.c.id == moment_id)
                                    )).rowcount)
