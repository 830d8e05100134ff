"""Bearer tokens: only their SHA-256 is stored; roles travel with the token's name."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from recordings_service.config import ROLES
from recordings_service.errors import BadRequest
from storage import catalog
from storage.database import Database

TOKEN_PREFIX = "rst_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret


@dataclass(frozen=True)
class Actor:
    """Who is acting: a token's name and roles, or a ``system:*`` job."""

    name: str
    roles: frozenset[str]


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(database: Database, name: str, roles: list[str], now: datetime) -> str:
    unknown = set(roles) - ROLES
    if not roles or unknown:
        raise BadRequest("invalid_role", f"roles must be among {sorted(ROLES)}")
    if not name or len(name) > 128 or not name.isprintable() or name.startswith("system:"):
        raise BadRequest("invalid_name", "token names are 1-128 printable characters, "
                                         "not starting with 'system:'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with database.write() as conn:
        if not await catalog.create_token(conn, name, hash_token(token), roles, now):
            raise BadRequest("duplicate_name", f"a token named {name!r} exists already")
    return token


async def authenticate(database: Database, token: str) -> Actor | None:
    async with database.read() as conn:
        row = await catalog.token_by_hash(conn, hash_token(token))
    if row is None or row.revoked_at is not None:
        return None
    return Actor(row.name, frozenset(row.roles))


async def actor_by_name(database: Database, name: str) -> Actor | None:
    async with database.read() as conn:
        row = await catalog.token_by_name(conn, name)
    if row is None or row.revoked_at is not None:
        return None
    return Actor(row.name, frozenset(row.roles))
