"""Catalog rows of people: local accounts, their sessions, failed sign-ins."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from storage.database import Conn
from storage.schema import oidc_logins, sessions, sign_in_failures, tokens, users


@dataclass(frozen=True)
class UserRow:
    name: str
    password_hash: str
    roles: tuple[str, ...]
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None
    agent_id: str | None = None


def _user(row: Any) -> UserRow:
    return UserRow(row.name, row.password_hash, tuple(json.loads(row.roles)), row.created_at,
                   row.disabled_at, row.last_sign_in_at, row.agent_id)


async def insert_user(conn: Conn, name: str, password_hash: str, roles: list[str],
                      now: datetime, agent_id: str | None = None) -> bool:
    """False when an account of that name exists already."""
    if await get_user(conn, name) is not None:
        return False
    await conn.execute(insert(users).values(name=name, password_hash=password_hash,
                                            roles=json.dumps(sorted(set(roles))),
                                            created_at=now, agent_id=agent_id))
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


# --- sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    id_hash: str
    user_name: str
    roles: tuple[str, ...]
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    agent_id: str | None = None


async def insert_session(conn: Conn, row: SessionRow) -> None:
    await conn.execute(insert(sessions).values(
        id_hash=row.id_hash, user_name=row.user_name, roles=json.dumps(list(row.roles)),
        csrf_token=row.csrf_token, created_at=row.created_at, last_seen_at=row.last_seen_at,
        expires_at=row.expires_at, agent_id=row.agent_id))


async def get_session(conn: Conn, id_hash: str) -> SessionRow | None:
    r = (await conn.execute(select(sessions).where(sessions.c.id_hash == id_hash))).first()
    if r is None:
        return None
    return SessionRow(r.id_hash, r.user_name, tuple(json.loads(r.roles)), r.csrf_token,
                      r.created_at, r.last_seen_at, r.expires_at, r.agent_id)


async def touch_session(conn: Conn, id_hash: str, now: datetime) -> None:
    await conn.execute(update(sessions).where(sessions.c.id_hash == id_hash)
                       .values(last_seen_at=now))


async def delete_session(conn: Conn, id_hash: str) -> None:
    await conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))


async def delete_sessions_of(conn: Conn, user_name: str) -> None:
    await conn.execute(delete(sessions).where(sessions.c.user_name == user_name))


async def signed_in(conn: Conn, name: str, now: datetime) -> None:
    await conn.execute(update(users).where(users.c.name == name).values(last_sign_in_at=now))


# --- failed sign-ins -------------------------------------------------------------------


@dataclass(frozen=True)
class Failures:
    count: int
    window_start: datetime
    locked_until: datetime | None


async def failures(conn: Conn, key: str, for_update: bool = False) -> Failures | None:
    query = select(sign_in_failures).where(sign_in_failures.c.key == key)
    r = (await conn.execute(query.with_for_update() if for_update else query)).first()
    return None if r is None else Failures(r.failures, r.window_start, r.locked_until)


async def insert_failures(conn: Conn, key: str, value: Failures) -> None:
    """The key's first failure; IntegrityError when another request inserted it first."""
    await conn.execute(insert(sign_in_failures).values(
        key=key, failures=value.count, window_start=value.window_start,
        locked_until=value.locked_until))


async def update_failures(conn: Conn, key: str, value: Failures) -> None:
    """The key's row, locked by ``failures(for_update=True)`` in this transaction."""
    await conn.execute(update(sign_in_failures).where(sign_in_failures.c.key == key).values(
        failures=value.count, window_start=value.window_start,
        locked_until=value.locked_until))


async def clear_failures(conn: Conn, key: str) -> None:
    await conn.execute(delete(sign_in_failures).where(sign_in_failures.c.key == key))


# --- single sign-on ---------------------------------------------------------------------

SSO_PASSWORD = "!sso"  # noqa: S105 - marks an account that signs in only through SSO


async def begin_login(conn: Conn, state_hash: str, nonce: str, verifier: str,
                      now: datetime) -> None:
    await conn.execute(insert(oidc_logins).values(state_hash=state_hash, nonce=nonce,
                                                  code_verifier=verifier, created_at=now))


async def take_login(conn: Conn, state_hash: str) -> tuple[str, str, datetime] | None:
    """The login's (nonce, verifier, started) once: it is deleted, so a state replays
    to nothing."""
    r = (await conn.execute(select(oidc_logins)
                            .where(oidc_logins.c.state_hash == state_hash))).first()
    if r is None:
        return None
    result = await conn.execute(delete(oidc_logins)
                                .where(oidc_logins.c.state_hash == state_hash))
    if not result.rowcount:
        return None  # another replica took it at the same moment
    return r.nonce, r.code_verifier, r.created_at


async def upsert_sso_user(conn: Conn, name: str, roles: list[str], now: datetime,
                          agent_id: str | None = None) -> str:
    """Records a person who signed in through SSO with the roles their provider gives now;
    returns "ok", "disabled", "local" (a local account holds the name) or "token" (a
    token holds it: names are unique across both, or the audit would mix two principals)."""
    if (await conn.execute(select(tokens.c.name).where(tokens.c.name == name))).first():
        return "token"
    found = await get_user(conn, name)
    if found is None:
        await conn.execute(insert(users).values(name=name, password_hash=SSO_PASSWORD,
                                                roles=json.dumps(sorted(set(roles))),
                                                created_at=now, agent_id=agent_id))
        return "ok"
    if found.password_hash != SSO_PASSWORD:
        return "local"
    if found.disabled_at is not None:
        return "disabled"
    await conn.execute(update(users).where(users.c.name == name)
                       .values(roles=json.dumps(sorted(set(roles))), agent_id=agent_id))
    return "ok"


async def sweep(conn: Conn, now: datetime, idle_before: datetime, window_before: datetime,
                logins_before: datetime) -> int:
    """Deletes what can no longer be used: ended sessions, failure counts whose window and
    lock are over, logins never returned from. Returns how many rows."""
    removed = 0
    for statement in (
        delete(sessions).where((sessions.c.expires_at <= now)
                               | (sessions.c.last_seen_at <= idle_before)),
        delete(sign_in_failures).where(
            sign_in_failures.c.window_start <= window_before,
            sign_in_failures.c.locked_until.is_(None)
            | (sign_in_failures.c.locked_until <= now)),
        delete(oidc_logins).where(oidc_logins.c.created_at <= logins_before),
    ):
        removed += (await conn.execute(statement)).rowcount or 0
    return removed
