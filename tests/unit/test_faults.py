"""Which driver errors mean "the catalog cannot be reached" (503, retry) and which are a
real failure (500): every PostgreSQL connection-class SQLSTATE, wrapped as SQLAlchemy
wraps it, is the first."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from storage.faults import is_catalog_unreachable


def _wrapped(error: Exception) -> DBAPIError:
    return DBAPIError("SELECT 1", None, error)


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
    asyncpg.exceptions.ConnectionFailureError("08006"),
    asyncpg.exceptions.CannotConnectNowError("starting up"),
    asyncpg.exceptions.AdminShutdownError("terminated"),
    asyncpg.exceptions.TooManyConnectionsError("too many"),
    asyncpg.exceptions.InvalidAuthorizationSpecificationError("no pg_hba entry"),
    asyncpg.exceptions.InvalidCatalogNameError('database "x" does not exist'),
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError(
        'database "test" is not currently accepting connections'),
    ConnectionRefusedError(111, "refused"),
    TimeoutError(),
])
def test_a_lost_or_refused_connection_is_unreachable(error: Exception) -> None:
    assert is_catalog_unreachable(error)
    assert is_catalog_unreachable(_wrapped(error))


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError("cannot refresh"),
    asyncpg.exceptions.StringDataRightTruncationError("value too long"),
    ValueError("a bug"),
])
def test_other_errors_are_not(error: Exception) -> None:
    assert not is_catalog_unreachable(_wrapped(error))
