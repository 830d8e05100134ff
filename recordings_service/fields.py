"""Checks of the text a request gives, against the limits its catalog column follows
(``storage.limits``). A refusal names the field, never echoes its value."""

from __future__ import annotations

import re
from typing import Any

from recordings_service.errors import BadRequest
from storage.limits import IDENTIFIER

# Control characters (NUL is refused by PostgreSQL) and unpaired surrogates (not UTF-8).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def is_text(value: Any, limit: int) -> bool:
    """A string of at most ``limit`` characters that every catalog can store and a log
    could never be confused by."""
    return isinstance(value, str) and len(value) <= limit and _UNPRINTABLE.search(value) is None


def optional_text(value: Any, field: str, limit: int, reason: str) -> str | None:
    if value is None:
        return None
    if not is_text(value, limit):
        raise BadRequest(reason, f"{field} must be a string of at most {limit} printable "
                                 f"characters")
    return str(value)


def required_text(value: Any, field: str, limit: int, reason: str) -> str:
    if not is_text(value, limit) or not str(value).strip():
        raise BadRequest(reason, f"{field} is required (a string of at most {limit} "
                                 f"printable characters)")
    return str(value)


# Ids that routes name in a path (customer_id, call_id): "." and ".." cannot be, because
# clients and browsers resolve them as dot-segments before sending (RFC 3986 5.2.4).
DOT_SEGMENTS = frozenset({".", ".."})


def refuse_dot_segment(value: str | None, field: str, reason: str) -> None:
    """For an id already checked as text that a route names in its path."""
    if value in DOT_SEGMENTS:
        raise BadRequest(reason, f'{field} cannot be "." or ".." (a path cannot name it)')


def customer_id(value: Any, reason: str = "invalid_customer_id") -> str:
    """A required customer id: the same rules as at upload (a route names it in a path)."""
    found = required_text(value, "customer_id", IDENTIFIER, reason)
    refuse_dot_segment(found, "customer_id", reason)
    return found


def request_reference(body: dict[str, Any]) -> str | None:
    """The data-subject request an action answers (its reference in the register)."""
    return optional_text(body.get("request_reference"), "request_reference", IDENTIFIER,
                         "invalid_json")
