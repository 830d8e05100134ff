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


# PostgreSQL's SQLSTATEs of a connection that is lost or refused: class 08 (connection
# exception), 28 (the server refuses this login), 3D000 (no such database), 53300 (too
# many connections), 57P01-57P04 (shut down, crashed, cannot connect now, database
# dropped). 55000 is only one of these when the database refuses connections
# (ALTER DATABASE ... ALLOW_CONNECTIONS false).
_REFUSED_STATES = {"3D000", "53300", "57P01", "57P02", "57P03", "57P04"}


def _connection_state(item: BaseException) -> bool:
    state = getattr(item, "sqlstate", None)
    if not isinstance(state, str):
        return False
    return (state.startswith(("08", "28")) or state in _REFUSED_STATES
            or (state == "55000" and "accepting connections" in str(item)))


def is_catalog_unreachable(exc: BaseException) -> bool:
    """A lost or refused database connection (PostgreSQL restarted, refusing connections,
    network cut): every connection-class error, whichever driver class carries it."""
    for item in _chain(exc):
        if isinstance(item, ConnectionError | TimeoutError) or _connection_state(item):
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
