"""Opaque keyset cursors: the (time, id) of the last item served, and the page it ends;
for searches, also the sort and the way it pages."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

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



def encode_search_cursor(sort: str, position: tuple[Any, ...], backwards: bool) -> str:
    """A search position: its sort, the keys there (the id last), and which way it pages."""
    shown = [v.isoformat() if isinstance(v, datetime) else v for v in position]
    raw = json.dumps({"s": sort, "p": shown, "b": backwards}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _time(value: Any) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError
    return at.astimezone(UTC)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


# Each sort's keys before the id, as a cursor holds them.
_KEYS: dict[str, tuple[Callable[[Any], Any], ...]] = {
    "started_at": (_time,), "duration": (_seconds,), "agent": (_text, _time)}


def decode_search_cursor(cursor: str | None, sort: str,
                         ) -> tuple[tuple[Any, ...] | None, bool]:
    """(position, backwards); a cursor of another sort than the one asked is refused."""
    if not cursor:
        return None, False
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values, backwards = raw["p"], raw["b"]
        readers = _KEYS[sort.lstrip("-")]
        if raw["s"] != sort or not isinstance(backwards, bool) or not isinstance(values, list) \
                or len(values) != len(readers) + 1:
            raise ValueError
        keys = tuple(read(v) for read, v in zip(readers, values, strict=False))
        return (*keys, _text(values[-1])), backwards
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError):
        raise BadRequest("invalid_cursor", "the cursor is not one this service gave "
                                           "for this sort") from None


def page_of(found: Sequence[T], limit: int,
            position: Callable[[T], tuple[datetime, str]]) -> tuple[list[T], str | None]:
    """``found`` was read with ``limit + 1``: the page, and a cursor when more follow."""
    page = list(found[:limit])
    more = len(found) > limit
    return page, (encode_cursor(*position(page[-1])) if more else None)
