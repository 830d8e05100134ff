"""Recognising the faults an operator must hear about by name, whatever layer raised them:
a full disk, or a catalog that cannot be reached. Storage code raises what its drivers
raise; the HTTP layer asks here what it was."""

from __future__ import annotations

import errno
import sqlite3

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# SQLite's result codes, as the sqlite3 module reports them on its errors.
_SQLITE_FULL = 13


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and what caused it."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack and len(seen) < 20:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        for linked in (getattr(item, "orig", None), item.__cause__, item.__context__):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return seen


def is_disk_full(exc: BaseException) -> bool:
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno in _FULL_ERRNOS:
            return True
        if isinstance(item, sqlite3.Error) and (
                getattr(item, "sqlite_errorcode", None) == _SQLITE_FULL
                or "disk is full" in str(item)):
            return True
        if type(item).__name__ == "DiskFullError":  # asyncpg, PostgreSQL's 53100
            return True
    return False


def is_catalog_unreachable(exc: BaseException) -> bool:
    """A lost or refused database connection (PostgreSQL restarted, network cut)."""
    for item in _chain(exc):
        if isinstance(item, ConnectionError | TimeoutError):
            return True
        name = type(item).__name__
        if name in ("ConnectionDoesNotExistError", "InterfaceError",
                    "CannotConnectNowError", "ConnectionFailureError",
                    "AdminShutdownError", "CrashShutdownError", "PendingRollbackError",
                    "TooManyConnectionsError"):
            return True
        if getattr(item, "connection_invalidated", False):
            return True
    return False
