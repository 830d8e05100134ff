"""Text every catalog can store: no NUL (PostgreSQL text refuses it) and no unpaired
surrogate (cannot be encoded as UTF-8; aiohttp turns undecodable bytes into them)."""

from __future__ import annotations

import re

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    # The common case, plain ASCII without NUL, costs no regex.
    return ("\x00" not in text and text.isascii()) or _UNSTORABLE.search(text) is None


def make_storable(text: str) -> str:
    """``text`` itself when storable, else with each offending character as U+FFFD."""
    return text if is_storable(text) else _UNSTORABLE.sub("\ufffd", text)
