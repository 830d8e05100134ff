"""Bearer tokens: only their SHA-256 is stored; roles travel with the token's name.

A token may expire (``tokens create --expires-in``); its last use is recorded at most once
a minute per process, so a busy token costs one small write a minute, not one a request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from recordings_service.config import ROLES
from recordings_service.errors import BadRequest
from storage import catalog, people_store
from storage.database import Database

TOKEN_PREFIX = "rst_"  # noqa: S105 - a marker that makes leaked tokens greppable, not a secret


@dataclass(frozen=True)
class Actor:
    """Who is acting: a token's name and roles, or a ``system:*`` job."""

    name: str
    roles: frozenset[str]
    # The agent an ``agent`` acts as: their own evaluations, their own evaluated calls.
    agent_id: str | None = None


REVIEWERS = frozenset({"supervisor", "compliance"})


def is_agent_only(actor: Actor) -> bool:
    """An agent and nothing that reviews: their own evaluations, their own evaluated calls,
    the clips shared with them; nothing else."""
    return "agent" in actor.roles and not actor.roles & REVIEWERS


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


LAST_USE_EVERY = timedelta(minutes=1)
# (catalog, token name) -> when this process last wrote the token's last use.
_last_use_written: dict[tuple[int, str], datetime] = {}
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhd])")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``90d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise BadRequest("invalid_duration", "a duration is a number and m, h or d "
                                             "(e.g. 90d, 12h, 30m)")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def check_agent(roles: list[str] | tuple[str, ...], agent_id: str | None) -> None:
    """An ``agent`` is always one agent; no other role names one."""
    if "agent" in roles and not agent_id:
        raise BadRequest("agent_id_required", "the agent role needs the agent's id "
                                              "(--agent-id)")
    if agent_id is not None and "agent" not in roles:
        raise BadRequest("invalid_agent_id", "only the agent role names an agent id")
    if agent_id is not None and (len(agent_id) > 255 or not agent_id.isprintable()
                                 or agent_id != agent_id.strip()):
        raise BadRequest("invalid_agent_id", "an agent id is 1-255 printable characters")


async def create_token(database: Database, name: str, roles: list[str], now: datetime,
                       expires_in: timedelta | None = None,
                       agent_id: str | None = None) -> str:
    unknown = set(roles) - ROLES
    if not roles or unknown:
        raise BadRequest("invalid_role", f"roles must be among {sorted(ROLES)}")
    check_agent(roles, agent_id)
    if not name or len(name) > 128 or not name.isprintable() or name.startswith("system:"):
        raise BadRequest("invalid_name", "token names are 1-128 printable characters, "
                                         "not starting with 'system:'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with database.write() as conn:
        if await people_store.get_user(conn, name) is not None:
            raise BadRequest("duplicate_name", f"{name!r} is a person's account name")
        if not await catalog.create_token(conn, name, hash_token(token), roles, now,
                                          None if expires_in is None else now + expires_in,
                                          agent_id):
            raise BadRequest("duplicate_name", f"a token named {name!r} exists already")
    return token


def usable(row: catalog.TokenRow, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or now < row.expires_at)


async def authenticate(database: Database, token: str, now: datetime) -> Actor | None:
    async with database.read() as conn:
        row = await catalog.token_by_hash(conn, hash_token(token))
    if row is None or not usable(row, now):
        return None
    key = (id(database), row.name)
    written = _last_use_written.get(key)
    if written is None or now - written >= LAST_USE_EVERY or now < written:
        _last_use_written[key] = now
        async with database.write() as conn:
            await catalog.token_used(conn, row.name, now)
    return Actor(row.name, frozenset(row.roles), row.agent_id)


async def actor_by_name(database: Database, name: str, now: datetime) -> Actor | None:
    """The token, or the person's enabled account, of that name (names are unique across
    both), with its roles now: a playback link re-checks its maker with this."""
    async with database.read() as conn:
        row = await catalog.token_by_name(conn, name)
        person = None if row is not None else await people_store.get_user(conn, name)
    if row is not None:
        return Actor(row.name, frozenset(row.roles), row.agent_id) if usable(row, now) \
            else None
    if person is not None and person.disabled_at is None:
        return Actor(person.name, frozenset(person.roles), person.agent_id)
    return None
