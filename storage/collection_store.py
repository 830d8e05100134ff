"""The training library: collections, their clips, and the agents they are shared with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from storage import keyset
from storage.database import Conn
from storage.schema import collection_clips, collection_shares, collections


@dataclass(frozen=True)
class Collection:
    id: str
    name: str
    description: str | None
    owner: str
    created_at: datetime


@dataclass(frozen=True)
class Clip:
    id: str
    collection_id: str
    recording_id: str
    start_seconds: float
    end_seconds: float
    note: str | None
    added_by: str
    created_at: datetime


def _collection(row: Any) -> Collection:
    return Collection(**row._asdict())


def _clip(row: Any) -> Clip:
    return Clip(**row._asdict())


async def insert_collection(conn: Conn, c: Collection) -> None:
    await conn.execute(insert(collections), [c.__dict__])


async def get_collection(conn: Conn, collection_id: str) -> Collection | None:
    row = (await conn.execute(select(collections).where(
        collections.c.id == collection_id))).first()
    return None if row is None else _collection(row)


async def list_collections(conn: Conn, before: tuple[datetime, str] | None, limit: int,
                           agent_id: str | None = None) -> list[Collection]:
    """Newest first; for an agent, those shared with them (the shares' agent index, then
    each collection by its key)."""
    c = collections.c
    query = select(collections).order_by(c.created_at.desc(), c.id.desc())
    if agent_id is not None:
        shared = select(collection_shares.c.collection_id).where(
            collection_shares.c.agent_id == agent_id)
        query = query.where(c.id.in_(shared))
    if before is not None:
        query = query.where(keyset.before(c.created_at, c.id, before))
    return [_collection(r) for r in await conn.execute(query.limit(limit))]


async def insert_clip(conn: Conn, clip: Clip) -> None:
    await conn.execute(insert(collection_clips), [clip.__dict__])


async def clips_of(conn: Conn, collection_id: str, limit: int) -> list[Clip]:
    k = collection_clips.c
    rows = await conn.execute(select(collection_clips).where(
        k.collection_id == collection_id).order_by(k.created_at, k.id).limit(limit))
    return [_clip(r) for r in rows]


async def get_clip(conn: Conn, collection_id: str, clip_id: str) -> Clip | None:
    k = collection_clips.c
    row = (await conn.execute(select(collection_clips).where(
        k.id == clip_id, k.collection_id == collection_id))).first()
    return None if row is None else _clip(row)


async def delete_clip(conn: Conn, collection_id: str, clip_id: str) -> bool:
    k = collection_clips.c
    result = await conn.execute(delete(collection_clips).where(
        k.id == clip_id, k.collection_id == collection_id))
    return bool(result.rowcount)


async def shared_with(conn: Conn, collection_id: str) -> list[str]:
    s = collection_shares.c
    rows = await conn.execute(select(s.agent_id).where(s.collection_id == collection_id)
                              .order_by(s.agent_id))
    return [r[0] for r in rows]


async def is_shared(conn: Conn, collection_id: str, agent_id: str) -> bool:
    s = collection_shares.c
    return (await conn.execute(select(s.agent_id).where(
        s.collection_id == collection_id, s.agent_id == agent_id))).first() is not None


async def share(conn: Conn, collection_id: str, agent_id: str, by: str,
                now: datetime) -> bool:
    """False when it was shared with that agent already."""
    if await is_shared(conn, collection_id, agent_id):
        return False
    await conn.execute(insert(collection_shares).values(
        collection_id=collection_id, agent_id=agent_id, shared_by=by, shared_at=now))
    return True


async def unshare(conn: Conn, collection_id: str, agent_id: str) -> bool:
    s = collection_shares.c
    result = await conn.execute(delete(collection_shares).where(
        s.collection_id == collection_id, s.agent_id == agent_id))
    return bool(result.rowcount)
