"""Catalog rows of people's local accounts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from storage.database import Conn
from storage.schema import users


@dataclass(frozen=True)
class UserRow:
    name: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None


def _user(row: Any) -> UserRow:
    return UserRow(row.name, row.password_hash, tuple(json.loads(row.roles)), row.created_at,
                   row.disabled_at, row.last_sign_in_at)


async def insert_user(conn: Conn, name: str, password_hash: str, roles: list[str],
                      now: datetime) -> bool:
    """False when an account of that name exists already."""
    if await get_user(conn, name) is not None:
        return False
    await conn.execute(insert(users).values(name=name, password_hash=password_hash,
                                            roles=json.dumps(sorted(set(roles))),
                                            created_at=now))
    return True


async def get_user(conn: Conn, name: str) -> UserRow | None:
    row = (await conn.execute(select(users).where(users.c.name == name))).first()
    return None if row is None else _user(row)


async def list_users(conn: Conn) -> list[UserRow]:
    return [_user(r) for r in await conn.execute(select(users).order_by(users.c.name))]


async def disable_user(conn: Conn, name: str, now: datetime) -> bool:
    result = await conn.execute(update(users).where(users.c.name == name,
                                                    users.c.disabled_at.is_(None))
                                .values(disabled_at=now))
    return bool(result.rowcount)


async def set_password_hash(conn: Conn, name: str, password_hash: str) -> bool:
    result = await conn.execute(update(users).where(users.c.name == name)
                                .values(password_hash=password_hash))
    return bool(result.rowcount)
