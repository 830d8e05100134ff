"""Catalog rows of the key hierarchy: sealed key-encryption keys and service secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from storage.database import Conn
from storage.schema import key_secrets, key_versions


@dataclass(frozen=True)
class KeyRow:
    version: int
    root_generation: int | None
    sealed_key: bytes | None
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class SecretRow:
    name: str
    root_generation: int
    sealed_value: bytes


async def key_rows(conn: Conn) -> list[KeyRow]:
    rows = await conn.execute(select(key_versions).order_by(key_versions.c.version))
    return [KeyRow(r.version, r.root_generation, r.sealed_key, r.created_at, r.retired_at)
            for r in rows]


async def insert_key(conn: Conn, version: int, generation: int, sealed: bytes | None,
                     created_at: datetime, retired_at: datetime | None = None) -> None:
    await conn.execute(insert(key_versions).values(
        version=version, root_generation=generation if sealed else None, sealed_key=sealed,
        created_at=created_at, retired_at=retired_at))


async def retire_key(conn: Conn, version: int, now: datetime) -> None:
    await conn.execute(update(key_versions)
                       .where(key_versions.c.version == version,
                              key_versions.c.retired_at.is_(None))
                       .values(sealed_key=None, root_generation=None, retired_at=now))


async def secret_rows(conn: Conn) -> dict[str, SecretRow]:
    rows = await conn.execute(select(key_secrets))
    return {r.name: SecretRow(r.name, r.root_generation, r.sealed_value) for r in rows}


async def insert_secret(conn: Conn, name: str, generation: int, sealed: bytes,
                        now: datetime) -> None:
    await conn.execute(insert(key_secrets).values(
        name=name, root_generation=generation, sealed_value=sealed, created_at=now))


async def reseal_key(conn: Conn, version: int, generation: int, sealed: bytes) -> None:
    await conn.execute(update(key_versions)
                       .where(key_versions.c.version == version,
                              key_versions.c.sealed_key.is_not(None))
                       .values(root_generation=generation, sealed_key=sealed))


async def reseal_secret(conn: Conn, name: str, generation: int, sealed: bytes) -> None:
    await conn.execute(update(key_secrets).where(key_secrets.c.name == name)
                       .values(root_generation=generation, sealed_value=sealed))


async def generations_in_use(conn: Conn) -> set[int]:
    keys = await conn.execute(select(key_versions.c.root_generation).distinct()
                              .where(key_versions.c.root_generation.is_not(None)))
    secrets = await conn.execute(select(key_secrets.c.root_generation).distinct())
    return {int(g) for (g,) in keys} | {int(g) for (g,) in secrets}
