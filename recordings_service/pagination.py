"""Opaque keyset cursors: the (time, id) of the last item served, and the page it ends."""

from __future__ import annotations

import base64
import json
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



def page_of(found: Sequence[T], limit: int,
            position: Callable[[T], tuple[datetime, str]]) -> tuple[list[T], str | None]:
    """``found`` was read with ``limit + 1``: the page, and a cursor when more follow."""
    page = list(found[:limit])
    more = len(found) > limit
    return page, (encode_cursor(*position(page[-1])) if more else None)
