"""Text every catalog can store: no NUL (PostgreSQL text refuses it) and no unpaired
surrogate (cannot be encoded as UTF-8; aiohttp turns undecodable bytes into them); and
times as the signed notes and entries write them."""

from __future__ import annotations

import re
from datetime import datetime

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    # The common case, plain ASCII without NUL, costs no regex.
    return ("\x00" not in text and text.isascii()) or _UNSTORABLE.search(text) is None


def make_storable(text: str) -> str:
    """``text`` itself when storable, else with each offending character as U+FFFD."""
    return text if is_storable(text) else _UNSTORABLE.sub("\ufffd", text)


def rfc3339(at: datetime) -> str:
    """UTC to the microsecond, with Z: how entries and signed notes give times."""
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
