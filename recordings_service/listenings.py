"""Who heard a call: the audit log's audio accesses to one recording, grouped into
listenings (one person, one purpose, requests no more than LISTENING_GAP apart), with the
byte ranges each was sent, merged, and the share of the call they cover.

A stream entry is written before a byte is sent, with the Range asked for; when the client
leaves before the end of it, a ``stream_cut`` entry of the same request says how much was
sent. What was sent is the upper bound of what was heard: a player buffers ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from recordings_service import audit_reading
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import NotFound, RangeNotSatisfiable
from recordings_service.ranges import parse_range
from recordings_service.services import Services
from recordings_service.times import rfc3339
from storage import audit_log, catalog
from storage.catalog import Recording
from storage.text import parse_rfc3339

LISTENING_GAP = timedelta(minutes=30)
# The newest accesses read for the panel; older ones are in the audit log.
ENTRIES = 2_000


@dataclass
class Listening:
    actor: str
    purpose: str
    first: datetime
    last: datetime
    requests: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)  # merged, inclusive

    def bytes_sent(self) -> int:
        return sum(end - start + 1 for start, end in self.ranges)


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _sent(entry: dict[str, Any], size: int) -> tuple[int, int] | None:
    detail = entry.get("detail") or {}
    if detail.get("method") == "HEAD":
        return None
    try:
        asked = parse_range(detail.get("range"), size)
    except RangeNotSatisfiable:
        return None
    return (asked.start, asked.end) if asked else (0, size - 1) if size else None


def listenings(entries: list[dict[str, Any]], size: int) -> list[Listening]:
    """``entries`` oldest first; the listenings newest first."""
    cut = {e["request_id"]: (e.get("detail") or {}).get("served")
           for e in entries if e["action"] == "stream_cut" and e.get("request_id")}
    found: list[Listening] = []
    open_by: dict[tuple[str, str], Listening] = {}
    for e in entries:
        if e["action"] != "stream" or e["outcome"] != "allowed":
            continue
        at = parse_rfc3339(e["at"])
        key = (e["actor"], e["purpose"] or "")
        current = open_by.get(key)
        if current is None or at - current.last > LISTENING_GAP:
            current = Listening(e["actor"], e["purpose"] or "", at, at)
            open_by[key] = current
            found.append(current)
        current.last = at
        current.requests += 1
        sent = _sent(e, size)
        if e.get("request_id") in cut:
            served = cut[e["request_id"]]
            sent = (int(served[0]), int(served[1])) if served else None
        if sent is not None:
            current.ranges = merged([*current.ranges, sent])
    return found[::-1]


async def of_recording(services: Services, actor: Actor, origin: Origin,
                       recording_id: str) -> tuple[Recording, list[Listening]]:
    """Read as an audited audit read (the reader is in the log for having looked)."""
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
    if rec is None:
        raise NotFound("no such recording")
    entries, _, _ = await audit_reading.read_entries(
        services, actor, origin, audit_log.AuditFilter(recording_id=rec.id),
        {"recording_id": rec.id, "view": "listenings"}, None, ENTRIES, newest_first=True)
    return rec, listenings(entries[::-1], rec.size_bytes)


def as_seconds(rec: Recording, listening: Listening) -> list[tuple[float, float]]:
    """Byte ranges as times into the call, in proportion to the file (exact for the
    constant-rate formats PBXs write; the header's few bytes count as the first instant)."""
    if not rec.size_bytes or not rec.duration_seconds:
        return []
    scale = rec.duration_seconds / rec.size_bytes
    return [(start * scale, min(rec.duration_seconds, (end + 1) * scale))
            for start, end in listening.ranges]


def listening_json(rec: Recording, listening: Listening) -> dict[str, Any]:
    spans = as_seconds(rec, listening)
    return {
        "actor": listening.actor, "purpose": listening.purpose,
        "first_at": rfc3339(listening.first), "last_at": rfc3339(listening.last),
        "requests": listening.requests, "bytes_sent": listening.bytes_sent(),
        "byte_ranges": [list(r) for r in listening.ranges],
        "seconds": [[round(a, 1), round(b, 1)] for a, b in spans],
        "seconds_heard": round(sum(b - a for a, b in spans), 1),
    }
