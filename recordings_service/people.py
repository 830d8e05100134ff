"""People's local accounts: names, roles, and passwords hashed with Argon2id.

Password rules (NIST SP 800-63B): at least ``MIN_LENGTH`` characters, up to 1,024 (no
maximum below 64), not the account's name, and not on the list of common passwords
shipped in ``data/common-passwords.txt``; no composition rules.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from recordings_service.auth import check_agent
from recordings_service.config import ROLES
from recordings_service.errors import BadRequest
from storage import catalog, people_store
from storage.database import Database

MIN_LENGTH = 12
MAX_LENGTH = 1024
# argon2-cffi's defaults are RFC 9106's second recommendation (Argon2id, t=3, 64 MiB).
_HASHER = PasswordHasher()


@cache
def common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "common-passwords.txt"
    return frozenset(line.strip().lower() for line in path.read_text().splitlines()
                     if line.strip() and not line.startswith("#"))


def check_password(name: str, password: str) -> None:
    """Raises BadRequest ``weak_password`` saying which rule the password breaks."""
    if len(password) < MIN_LENGTH:
        raise BadRequest("weak_password", f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadRequest("weak_password", f"a password has at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered == name.lower() or lowered in common_passwords():
        raise BadRequest("weak_password", "this password is too common or is the account's "
                                          "name; choose another")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_name(name: str) -> None:
    if not name or len(name) > 128 or not name.isprintable() or name.startswith("system:") \
            or name != name.strip():
        raise BadRequest("invalid_name", "account names are 1-128 printable characters, "
                                         "without outer spaces, not starting with 'system:'")


def check_roles(roles: list[str]) -> None:
    if not roles or set(roles) - ROLES:
        raise BadRequest("invalid_role", f"roles must be among {sorted(ROLES)}")


async def create_user(database: Database, name: str, roles: list[str], password: str,
                      now: datetime, agent_id: str | None = None) -> None:
    check_name(name)
    check_roles(roles)
    check_agent(roles, agent_id)
    check_password(name, password)
    password_hash = hash_password(password)
    async with database.write() as conn:
        if await catalog.token_by_name(conn, name) is not None:
            raise BadRequest("duplicate_name", f"{name!r} is a token's name")
        if not await people_store.insert_user(conn, name, password_hash, roles, now,
                                              agent_id):
            raise BadRequest("duplicate_name", f"an account named {name!r} exists already")


async def reset_password(database: Database, name: str, password: str) -> bool:
    check_password(name, password)
    password_hash = hash_password(password)
    async with database.write() as conn:
        changed = await people_store.set_password_hash(conn, name, password_hash)
        # Whoever held a session on the old password is signed out.
        await people_store.delete_sessions_of(conn, name)
    return changed
