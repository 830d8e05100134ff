"""RFC 9110 single byte ranges, as the audio endpoint serves them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from recordings_service.errors import RangeNotSatisfiable


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None means "send the whole body with 200".

    Raises RangeNotSatisfiable for a well-formed range outside the representation. A
    malformed header, another unit or several ranges are ignored (200, full body).
    """
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _DIGITS.fullmatch(first) or not _DIGITS.fullmatch(last):
        return None
    if first == "":
        if last == "":
            return None
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = _number(first)
    if last != "" and _number(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = size - 1 if last == "" else min(_number(last), size - 1)
    return ByteRange(start, end)


_DIGITS = re.compile(r"[0-9]*")
# Past any size we store; longer digit strings are read as this rather than converted
# (int() of 5,000 digits raises, and costs time on the way).
_HUGE = 10**18


def _number(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _HUGE
