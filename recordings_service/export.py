"""The right of access: a zip of everything kept about a data subject, streamed as built.

Entries, in this order: ``summary.txt`` (plain language: what is kept, why, until when, who
listened), ``manifest.json`` (every recording's JSON, tombstones included),
``moments.jsonl`` (what people marked in those calls, with their notes), ``calls.jsonl``
(the call records the PBXs sent about the subject's calls),
``audio/<id>.<ext>`` (decrypted), ``access-log.jsonl`` (every audit entry about those
recordings). zipfile writes into a small buffer that is drained to the client after each
piece, so memory stays flat however many or however large the recordings are (only the
zip's central directory, a few dozen bytes per entry, is held to the end).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import IO, Any

from recordings_service import access, calls, moments
from recordings_service.documents import recording_json
from recordings_service.media import EXTENSIONS
from recordings_service.services import Services
from recordings_service.subjects import pages_of
from storage import audit_log, call_store, catalog, moment_store, subject_store

Drain = Callable[[bytes], Awaitable[None]]


class _Sink:
    """A write-only, unseekable file for zipfile; ``take`` hands out what was written."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def _info(name: str, at: datetime, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=at.timetuple()[:6])
    info.compress_type = compress
    info.external_attr = 0o600 << 16
    return info


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "unknown"


def _summary_lines(rec: catalog.Recording, now: datetime,
                   accesses: list[tuple[str, str, str, str | None, int, datetime]]) -> list[str]:
    if rec.state == "purged":
        return [f"Recording {rec.id}: deleted on {_day(rec.purged_at)} "
                f"({rec.purge_reason}). Its audio and its key were destroyed; a signed "
                f"deletion receipt is in manifest.json.", ""]
    lines = [f"Recording {rec.id}: a call on {rec.started_at.strftime('%Y-%m-%d at %H:%M')} "
             f"UTC" + (f", {rec.duration_seconds:.0f} seconds" if rec.duration_seconds else "")
             + "."]
    lines.append("  Kept for:")
    for p in rec.purposes:
        if p.withdrawn_at is not None:
            status = f"withdrawn on {_day(p.withdrawn_at)}"
        elif now >= p.expires_at:
            status = f"ended on {_day(p.expires_at)}"
        else:
            status = f"until {_day(p.expires_at)}"
        lines.append(f"    - {p.purpose.replace('_', ' ')} (legal basis: "
                     f"{p.legal_basis.replace('_', ' ')}), {status}")
    if rec.purge_at:
        lines.append(f"  It will be deleted on {_day(rec.purge_at)}, when its last purpose "
                     f"ends (later only while a legal hold or a restriction applies).")
    if rec.legal_holds:
        lines.append(f"  It is under legal hold ({len(rec.legal_holds)} matter(s)) and "
                     f"will not be deleted while the hold stands.")
    if rec.restricted:
        lines.append(f"  Processing is restricted since {_day(rec.restriction_placed_at)}: "
                     f"it is only used to protect legal rights.")
    mine = [a for a in accesses if a[0] == rec.id]
    if mine:
        lines.append("  Who used it:")
        verbs = {"stream": "listened", "view_metadata": "looked up its details",
                 "playback_link": "opened a playback link"}
        for _, actor, action, purpose, count, last in mine:
            why = f" for {purpose.replace('_', ' ')}" if purpose else ""
            lines.append(f"    - {actor} {verbs.get(action, action)}{why}: {count} time(s), "
                         f"last on {_day(last)}")
    else:
        lines.append("  Nobody has listened to it or looked it up.")
    lines.append("")
    return lines


async def _access_log_pages(services: Services, ids: tuple[str, ...],
                            ) -> AsyncIterator[list[dict[str, Any]]]:
    after = 0
    while True:
        async with services.database.read() as conn:
            entries = await audit_log.list_entries(
                conn, audit_log.AuditFilter(recording_ids=ids), after, 500)
        yield entries
        if len(entries) < 500:
            return
        after = entries[-1]["seq"]


async def prepare(services: Services, customer_id: str,
                  audit: Callable[[list[str]], Awaitable[None]]) -> dict[str, int]:
    """Everything that can fail before the first byte of the zip: ``audit`` commits the
    access to the recordings whose audio goes out; returns what the zip will hold."""
    counts = {"recordings": 0, "audio_files": 0, "access_entries": 0}
    pages = []
    async for page in pages_of(services, customer_id):
        counts["recordings"] += len(page)
        active = [rec.id for rec in page if rec.state == "active"]
        counts["audio_files"] += len(active)
        if active:
            await audit(active)
        pages.append(tuple(rec.id for rec in page))
    for ids in pages:
        async for entries in _access_log_pages(services, ids):
            counts["access_entries"] += len(entries)
    return counts


async def stream_zip(services: Services, customer_id: str, drain: Drain) -> None:
    """Writes the zip through ``drain``; ``prepare`` has audited the access already."""
    now = services.clock()
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", allowZip64=True)

    async def flush() -> None:
        data = sink.take()
        if data:
            await drain(data)

    def open_entry(name: str, compress: int = zipfile.ZIP_DEFLATED) -> IO[bytes]:
        entry: IO[bytes] = archive.open(_info(name, now, compress), "w", force_zip64=True)
        return entry

    with open_entry("summary.txt") as out:
        out.write((f"What we keep about customer {customer_id}\n"
                   f"Prepared on {now.strftime('%Y-%m-%d at %H:%M')} UTC.\n\n").encode())
        async for page in pages_of(services, customer_id):
            async with services.database.read() as conn:
                accesses = await subject_store.access_summary(conn, [r.id for r in page])
            for rec in page:
                out.write("\n".join(_summary_lines(rec, now, accesses)).encode() + b"\n")
            await flush()
        out.write(b"The files: manifest.json lists every recording in full; audio/ holds "
                  b"the recordings still kept; moments.jsonl the moments people marked in "
                  b"them, with their notes; calls.jsonl the records of your calls our phone "
                  b"system sent (kept to check every call was recorded); access-log.jsonl "
                  b"lists every recorded use.\n")
    await flush()

    with open_entry("manifest.json") as out:
        out.write(b"[")
        first = True
        async for page in pages_of(services, customer_id):
            for rec in page:
                out.write((b"" if first else b",") + b"\n"
                          + json.dumps(recording_json(rec, now)).encode())
                first = False
            await flush()
        out.write(b"\n]\n")
    await flush()

    with open_entry("moments.jsonl") as out:
        # What people marked in the calls, with their notes: personal data about them too.
        async for page in pages_of(services, customer_id):
            async with services.database.read() as conn:
                marked = await moment_store.moments_of(conn, [r.id for r in page])
            for moment in marked:
                out.write(json.dumps(moments.moment_json(moment)).encode() + b"\n")
            await flush()
    await flush()

    with open_entry("calls.jsonl") as out:
        async with services.database.read() as conn:
            records = await call_store.of_customer(conn, customer_id)
            recorded = await call_store.audio_of(conn, [r.call_id for r in records])
        for record in records:
            shown = calls.record_json(record, recorded.get(record.call_id, []), with_phone=True)
            out.write(json.dumps(shown).encode() + b"\n")
    await flush()

    async for page in pages_of(services, customer_id):
        for rec in (rec for rec in page if rec.state == "active"):
            async with access.open_reader(services, rec) as reader:
                with open_entry(f"audio/{rec.id}.{EXTENSIONS.get(rec.content_type, 'bin')}",
                                zipfile.ZIP_STORED) as out:
                    async for chunk in reader.iter_range(0, rec.size_bytes - 1):
                        out.write(chunk)
                        await flush()
            await flush()

    with open_entry("access-log.jsonl") as out:
        async for page in pages_of(services, customer_id):
            async for entries in _access_log_pages(services, tuple(r.id for r in page)):
                for entry in entries:
                    out.write(json.dumps(entry).encode() + b"\n")
                await flush()
    archive.close()
    await flush()


def export_filename(now: datetime) -> str:
    return f"subject-export-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"
