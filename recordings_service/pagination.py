"""Opaque keyset cursors: the (time, id) of the last item served, and the page it ends;
for searches, also the sort and the way it pages."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from recordings_service.errors import BadRequest

T = TypeVar("T")


def encode_cursor(at: datetime, key: str) -> str:
    raw = json.dumps([at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, rid = json.loads(raw)
        at = datetime.fromisoformat(created)
        # Only this service makes cursors, always with an aware time and a string key.
        if at.tzinfo is None or not isinstance(rid, str):
            raise ValueError
        return at.astimezone(UTC), rid
    except (ValueError, TypeError, RecursionError, OverflowError):
        raise BadRequest("invalid_cursor", "the cursor is not one this service gave") from None



def encode_search_cursor(sort: str, value: datetime | float, key: str,
                         backwards: bool) -> str:
    """A search position: its sort, the sort value and id there, and which way it pages."""
    shown = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps({"s": sort, "v": shown, "k": key, "b": backwards}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_search_cursor(cursor: str | None, sort: str,
                         ) -> tuple[tuple[datetime | float, str] | None, bool]:
    """(position, backwards); a cursor of another sort than the one asked is refused."""
    if not cursor:
        return None, False
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, key, backwards = raw["v"], raw["k"], raw["b"]
        if raw["s"] != sort or not isinstance(key, str) or not isinstance(backwards, bool):
            raise ValueError
        if sort.endswith("started_at"):
            at = datetime.fromisoformat(value)
            if at.tzinfo is None:
                raise ValueError
            return (at.astimezone(UTC), key), backwards
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ValueError
        return (float(value), key), backwards
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError):
        raise BadRequest("invalid_cursor", "the cursor is not one this service gave "
                                           "for this sort") from None


def page_of(found: Sequence[T], limit: int,
            position: Callable[[T], tuple[datetime, str]]) -> tuple[list[T], str | None]:
    """``found`` was read with ``limit + 1``: the page, and a cursor when more follow."""
    page = list(found[:limit])
    more = len(found) > limit
    return page, (encode_cursor(*position(page[-1])) if more else None)
