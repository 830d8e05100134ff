"""Reading the audit log, for the API and the console alike: every read is itself
audited, and verification reports what it found."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from recordings_service import auditing, jobs
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.errors import BadRequest
from recordings_service.services import Services
from storage import audit_archive, audit_log


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The sequence number a page ends at; 0 for the first page."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, seq = text.partition(":")
        if kind != "seq" or not seq.isascii() or not seq.isdigit():
            raise ValueError(cursor)
        return int(seq)
    except ValueError:
        raise BadRequest("invalid_cursor", "the cursor is not one this service gave") from None


OUTCOMES = ("allowed", "denied", "error")
# Every action an entry can carry (docs/audit-format.md; a test reads the source and the
# route tables to keep this whole): the console offers them as the action filter's choices.
ACTIONS = tuple(sorted((
    "add_purpose", "audit_archive", "audit_export", "audit_read", "audit_verify", "backup",
    "call_records", "calls_read", "coverage", "clip_added", "clip_play", "clip_removed",
    "collection_created", "collection_read",
    "collection_shared", "collection_unshared", "console", "erasure", "erasure_replayed",
    "evaluation_add", "evaluation_read", "evaluation_response", "evaluation_revised",
    "evaluations_read", "export", "key_rewrap", "key_rotation", "keys_upgraded",
    "legal_hold_placed", "legal_hold_read", "legal_hold_released", "moment_add", "moment_deleted",
    "moments_read", "objection", "password_reset", "playback_link", "purge", "purge_run",
    "quality_forms_read", "quality_report", "rectify", "redaction", "redaction_proof",
    "redaction_replayed", "redactions_read", "request", "restore", "restriction",
    "restriction_lifted", "restriction_placed", "retention_recomputed", "root_key_exported",
    "root_key_rotation", "search", "signOut", "sign_in", "sign_in_lockout", "sign_out", "stream",
    "stream_cut", "subject_read", "subject_request_read", "subject_request_registered",
    "token_created", "token_revoked", "upload", "user_created", "user_disabled", "view_metadata",
    "view_policies", "waveform", "waveforms_built", "whoAmI", "withdraw_purpose")))
CSV_COLUMNS = ("seq", "at", "actor", "roles", "action", "recording_id", "purpose", "outcome",
               "reason", "client_ip", "request_id", "detail", "prev_hash", "hash")
# Entries read per statement while a CSV export streams.
CSV_PAGE = 500


def check_outcome(outcome: str | None) -> None:
    if outcome is not None and outcome not in OUTCOMES:
        raise BadRequest("invalid_query", "outcome must be allowed, denied or error")


async def read_entries(services: Services, actor: Actor, origin: Origin,
                       flt: audit_log.AuditFilter, filters: Mapping[str, str],
                       cursor: str | None, limit: int, archived: bool = False,
                       newest_first: bool = False,
                       ) -> tuple[list[dict[str, Any]], str | None, int]:
    """One page of entries matching ``flt``, the cursor of the next, and how many entries
    the archive holds; ``filters`` is what the reader asked for, as the audit entry of
    this read names it. The archive is read only when ``archived`` (in bounded steps:
    such a page may hold fewer than ``limit`` entries and still have a next one), and
    only oldest first."""
    check_outcome(flt.outcome)
    if archived and newest_first:
        raise BadRequest("invalid_query", "archived entries are read oldest first")
    after = decode_cursor(cursor)
    await auditing.record(services, auditing.event(actor, origin, "audit_read", "allowed",
                                                   detail={"filter": dict(filters)}))
    async with services.database.read() as conn:
        archive = await audit_archive.current(conn, services.signing_key.public_key(),
                                              services.config.audit_origin)
        if not (archived and after < archive.size):
            entries = await audit_log.list_entries(conn, flt, after, limit + 1,
                                                   newest_first)
            page = entries[:limit]
            return (page, encode_cursor(page[-1]["seq"]) if len(entries) > limit else None,
                    archive.size)
    page, last = await audit_log.list_archived(services.tiles, archive, flt, after, limit)
    return page, encode_cursor(last), archive.size


async def verify(services: Services, actor: Actor, origin: Origin,
                 full: bool = False) -> audit_log.VerifyReport:
    report = await jobs.verify_audit(services, full=full)
    await auditing.record(services, auditing.event(
        actor, origin, "audit_verify", "allowed",
        detail={"ok": report.ok, "entries": report.entries, "full": report.full,
                "checked": report.checked, "first_bad_seq": report.first_bad_seq}))
    return report


async def verification_state(services: Services) -> audit_log.VerificationState:
    async with services.database.read() as conn:
        return await audit_log.verification_state(conn)


async def checkpoints(services: Services, actor: Actor, origin: Origin,
                      limit: int) -> list[audit_log.Checkpoint]:
    """The newest signed checkpoints first."""
    await auditing.record(services, auditing.event(actor, origin, "audit_read", "allowed",
                                                   detail={"checkpoints": True}))
    async with services.database.read() as conn:
        return await audit_log.list_checkpoints(conn, limit=limit)


class AccessCounts:
    """Audio accesses allowed per UTC day and purpose, for the compliance page's chart.

    A day before today is complete (entries are appended at the time they are written), so
    this process counts it once; today is counted at each call, its own entries only. A
    page view then costs today's accesses, not the window's.
    """

    def __init__(self) -> None:
        self._days: dict[date, dict[str, int]] = {}

    async def since(self, services: Services, since: datetime,
                    ) -> dict[tuple[date, str], int]:
        today = datetime.combine(services.clock().astimezone(UTC).date(), time(), UTC)
        first = datetime.combine(since.astimezone(UTC).date(), time(), UTC)
        days = [(first + timedelta(days=d)).date() for d in range((today - first).days)]
        missing = [d for d in days if d not in self._days]
        dialect = services.database.dialect
        async with services.database.read() as conn:
            if missing:
                counted = await audit_log.count_accesses_per_day(
                    conn, dialect, datetime.combine(missing[0], time(), UTC), today)
                for day in missing:
                    self._days[day] = {}
                for (day, purpose), n in counted.items():
                    if day in self._days:
                        self._days[day][purpose] = n
            now = await audit_log.count_accesses_per_day(conn, dialect, today)
        for old in [d for d in self._days if d < first.date()]:
            del self._days[old]
        return {**{(day, p): n for day in days for p, n in self._days[day].items()}, **now}


def csv_cell(value: Any) -> str:
    """A value as one CSV cell: lists and objects as JSON. A cell that a spreadsheet would
    run as a formula (=, +, -, @ first) is quoted with a leading apostrophe: an actor name
    or a header a client sent must not become a formula in the reader's spreadsheet."""
    text = "" if value is None else (json.dumps(value, sort_keys=True, ensure_ascii=False)
                                      if isinstance(value, list | dict) else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


async def record_export(services: Services, actor: Actor, origin: Origin,
                        filters: Mapping[str, str]) -> None:
    await auditing.record(services, auditing.event(actor, origin, "audit_export", "allowed",
                                                   detail={"filter": dict(filters)}))


async def csv_chunks(services: Services,
                     flt: audit_log.AuditFilter | None) -> AsyncIterator[bytes]:
    """The header, then every entry matching ``flt`` (none for None) oldest first, a page
    of CSV_PAGE at a time: memory holds one page, whatever the log's size."""
    yield csv_lines([CSV_COLUMNS])
    after = 0
    while flt is not None:
        async with services.database.read() as conn:
            page = await audit_log.list_entries(conn, flt, after, CSV_PAGE)
        if not page:
            return
        yield csv_lines([[csv_cell(e.get(c)) for c in CSV_COLUMNS] for e in page])
        after = page[-1]["seq"]
