"""RFC 3339 times in, UTC out: the one parser for every time a client sends.

Strict on purpose: ``datetime.fromisoformat`` also takes ISO 8601 forms that RFC 3339 does
not (``20261124T091500Z``, week dates, no seconds), which a client would learn to rely on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from recordings_service.errors import BadRequest

_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]"
    r"(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))")


def parse_time(value: Any, name: str, reason: str = "invalid_metadata") -> datetime:
    """``value`` as an aware UTC datetime; 400 ``reason`` naming ``name`` otherwise."""
    invalid = BadRequest(reason, f"{name} must be an RFC 3339 time such as "
                                 f"2026-11-24T09:15:00Z")
    if not isinstance(value, str):
        raise invalid
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise invalid
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}")
        if match["z"]:
            return local.replace(tzinfo=UTC)
        hours, minutes = int(match["oh"]), int(match["om"])
        if hours > 23 or minutes > 59:
            raise invalid
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(offset if match["sign"] == "+" else -offset)
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        # A day or hour that does not exist, or a time whose UTC form falls outside the
        # calendar (0001-01-01T00:00:00+14:00).
        raise invalid from None


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
