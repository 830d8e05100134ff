"""Retention: purposes added and withdrawn, restriction, erasure, and the purge itself.

A purge takes a page of recordings through three steps, each committed before the next, so
a crash anywhere is finished by the next run: mark ``purging`` and destroy the wrapped data
keys (one transaction) → delete the blobs → tombstones (personal fields dropped) + signed
deletion receipts + audit entries (one transaction).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from recordings_service import auditing, calls, policy, worm
from recordings_service.auditing import SYSTEM_ORIGIN, Origin
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Conflict, Gone, NotFound, Refused
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.receipts import sign_receipt
from recordings_service.services import Services
from storage import catalog, erasure_ledger, retention_store
from storage.database import Conn
from storage.errors import BlobLockedError, StorageError
from storage.limits import REASON

log = logging.getLogger(__name__)

RETENTION_ACTOR = Actor("system:retention", frozenset())


def require_reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON:
        raise BadRequest("reason_required",
                         f"give a reason (a non-empty string of at most {REASON} characters)")
    return reason.strip()



def active_or_raise(rec: catalog.Recording | None) -> catalog.Recording:
    if rec is None:
        raise NotFound()
    if rec.state != "active":
        raise Gone("purged", "the recording has been purged")
    return rec


async def _recompute_purge_at(services: Services, conn: Conn,
                              recording_id: str) -> catalog.Recording:
    rec = await catalog.get_recording(conn, recording_id)
    assert rec is not None
    purge_at = policy.purge_at(policy.states_of(rec), services.clock())
    await worm.keep_until(services, rec, purge_at)
    await retention_store.set_purge_at(conn, recording_id, purge_at)
    return replace(rec, purge_at=purge_at)


async def add_purpose(services: Services, actor: Actor, origin: Origin, recording_id: str,
                      purpose_name: str, reason: str) -> catalog.Recording:
    purpose = services.config.purposes.get(purpose_name)
    if purpose is None:
        raise BadRequest("unknown_purpose", "the purpose is not a configured purpose")
    async with services.database.write() as conn:
        rec = active_or_raise(await catalog.lock_recording(conn, recording_id))
        state = policy.purpose_state(purpose, rec.started_at)
        await retention_store.upsert_purpose(conn, rec.id, purpose.name, purpose.legal_basis,
                                             state.expires_at)
        updated = await _recompute_purge_at(services, conn, rec.id)
        await auditing.append(services, conn, auditing.event(
            actor, origin, "add_purpose", "allowed", recording_id=rec.id,
            purpose=purpose.name, reason=reason,
            detail={"expires_at": rfc3339(state.expires_at),
                    "purge_at": rfc3339(updated.purge_at)}))
    return updated


async def withdraw_purpose(services: Services, actor: Actor, origin: Origin, recording_id: str,
                           purpose_name: str, reason: str) -> catalog.Recording:
    return await withdraw_purposes(services, actor, origin, recording_id, [purpose_name],
                                   reason, {})


async def withdraw_purposes(services: Services, actor: Actor, origin: Origin,
                            recording_id: str, purpose_names: list[str], reason: str,
                            detail: dict[str, Any]) -> catalog.Recording:
    """Withdraws several purposes of one recording atomically."""
    async with services.database.write() as conn:
        rec = active_or_raise(await catalog.lock_recording(conn, recording_id))
        for purpose_name in purpose_names:
            row = next((p for p in rec.purposes if p.purpose == purpose_name), None)
            if row is None:
                raise NotFound("the recording is not kept for that purpose")
            if row.legal_basis == "legal_obligation":
                raise Conflict("legal_obligation",
                               f"{purpose_name} is a legal obligation and cannot be "
                               f"withdrawn; it ends {rfc3339(row.expires_at)}")
            await retention_store.withdraw_purpose(conn, rec.id, purpose_name,
                                                   services.clock(), reason)
        updated = await _recompute_purge_at(services, conn, rec.id)
        for purpose_name in purpose_names:
            await auditing.append(services, conn, auditing.event(
                actor, origin, "withdraw_purpose", "allowed", recording_id=rec.id,
                purpose=purpose_name, reason=reason,
                detail={**detail, "purge_at": rfc3339(updated.purge_at)}))
    return updated


async def restrict(services: Services, actor: Actor, origin: Origin, recording_id: str,
                   reason: str, placed: bool) -> catalog.Recording:
    async with services.database.write() as conn:
        rec = active_or_raise(await catalog.lock_recording(conn, recording_id))
        if placed and not rec.restricted:
            await retention_store.set_restriction(conn, rec.id, reason, services.clock())
        elif not placed and rec.restricted:
            await retention_store.set_restriction(conn, rec.id, None, None)
        await auditing.append(services, conn, auditing.event(
            actor, origin, "restriction_placed" if placed else "restriction_lifted",
            "allowed", recording_id=rec.id, reason=reason,
            detail={"changed": placed != rec.restricted}))
        updated = await catalog.get_recording(conn, rec.id)
    assert updated is not None
    return updated


# --- purge -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeRequest:
    """Who purges, why, and how the audit entry names it."""

    actor: Actor
    origin: Origin
    action: str  # "purge" (retention) or "erasure" (a data subject's request)
    reason: str
    detail: dict[str, Any]


async def _mark_and_destroy(services: Services, ids: list[str], request: PurgeRequest,
                            check_erasure: bool,
                            ) -> tuple[list[catalog.Recording], dict[str, policy.Refusal],
                                       list[str]]:
    """Step 1, one transaction: under the row locks, re-check holds and restriction (and,
    for erasure, legal obligations), then mark the rest ``purging`` and destroy their
    wrapped data keys. Recordings a crash left ``purging`` are taken up again. Also returns
    the ids already purged (by another run or replica since they were read)."""
    refusals: dict[str, policy.Refusal] = {}
    marked: list[catalog.Recording] = []
    elsewhere: list[str] = []
    async with services.database.write() as conn:
        for rec in await catalog.lock_recordings(conn, ids):
            if rec.state == "purged":
                elsewhere.append(rec.id)
                continue
            if rec.state == "active":
                holds = [case for _, case in rec.legal_holds]
                refusal = (policy.erasure_refusal(holds, rec.restricted, policy.states_of(rec),
                                                  services.clock())
                           if check_erasure else policy.purge_blocker(holds, rec.restricted))
                if refusal is not None:
                    refusals[rec.id] = refusal
                    continue
            marked.append(rec)
        if marked:
            await retention_store.mark_purging_and_destroy_keys(
                conn, [r.id for r in marked], request.reason, erasure=check_erasure)
    return marked, refusals, elsewhere


async def _delete_blobs(services: Services, recs: list[catalog.Recording],
                        ) -> tuple[list[str], dict[str, datetime | None]]:
    """Step 2: deletes the blobs; returns the ids whose blob is gone, and those whose blob
    a write-once store keeps (id -> until when): noise, their keys being destroyed."""
    try:
        await services.blobs.delete_many([r.blob_name for r in recs if r.blob_name])
        return [r.id for r in recs], {}
    except (StorageError, OSError):
        pass  # find out which one by one
    gone, kept = [], {}
    for rec in recs:
        try:
            if rec.blob_name:
                await services.blobs.delete(rec.blob_name)
        except BlobLockedError as exc:
            kept[rec.id] = exc.until
            gone.append(rec.id)
            continue
        except (StorageError, OSError) as exc:
            # Its key is destroyed already; the next run deletes the blob and finishes.
            log.error("blob delete failed during purge",
                      extra={"recording_id": rec.id, "error": type(exc).__name__})
            continue
        gone.append(rec.id)
    return gone, kept


async def _tombstone_all(services: Services, ids: list[str], request: PurgeRequest,
                         kept: dict[str, datetime | None]) -> list[str]:
    """Step 3, one transaction: tombstones, signed receipts and audit entries."""
    now = services.clock()
    async with services.database.write() as conn:
        shredded = await retention_store.lock_shredded(conn, ids)
        receipts, entries, ledger = {}, [], []
        kept_blobs: dict[str, tuple[str, datetime | None]] = {}
        for rec in shredded:
            reason = rec.purge_reason or request.reason
            deleted = rec.id not in kept
            until = kept.get(rec.id)
            receipt = sign_receipt(services.signing_key, services.config.audit_origin,
                                   rec.id, rec.sha256, now, reason, deleted, until)
            receipts[rec.id] = json.dumps(receipt)
            detail = {**request.detail, "data_key_destroyed": True, "blob_deleted": deleted}
            if not deleted and rec.blob_name:
                detail["blob_kept_until"] = None if until is None else rfc3339(until)
                kept_blobs[rec.blob_name] = (rec.id, until)
            entries.append(auditing.event(
                request.actor, request.origin, request.action, "allowed",
                recording_id=rec.id, reason=reason, detail=detail))
            ledger.append({"recording_id": rec.id, "blob_name": rec.blob_name,
                           "purged_at": rfc3339(now), "reason": reason,
                           "action": request.action, "deletion_receipt": receipt})
        await retention_store.tombstone_many(conn, receipts, now)
        await retention_store.keep_blobs(conn, kept_blobs)
        await auditing.append_many(services, conn, entries)
        # Durable before the tombstones commit (storage/erasure_ledger.py says why).
        await asyncio.to_thread(erasure_ledger.append, services.config.erasure_ledger_path,
                                ledger)
    return list(receipts)


async def delete_kept_blobs(services: Services) -> int:
    """Deletes the blobs of purged recordings that a write-once store kept, once their
    locks have lapsed (the hourly sweep); returns how many went."""
    deleted = 0
    while True:
        async with services.database.read() as conn:
            due = await retention_store.kept_blobs_due(conn, services.clock(), 500)
        if not due:
            return deleted
        for name in due:
            until: datetime | None = None
            try:
                await services.blobs.delete(name)
                gone = True
            except BlobLockedError as exc:
                # Still kept (a retention the store extended, a hold in the store, its
                # clock behind ours): tried again when it says, and not before a minute.
                now = services.clock()
                gone = False
                until = max(exc.until, now + timedelta(minutes=1)) if exc.until \
                    else now + timedelta(hours=1)
            async with services.database.write() as conn:
                await retention_store.blob_released(conn, name, until, gone)
            deleted += gone
        if len(due) < 500:
            return deleted


async def mirror_ledger(services: Services) -> None:
    """Copies the erasure ledger's new lines to the backup destination, when configured.
    A failure is logged, not raised: the purge is done and its line is durable locally;
    the next purge or backup copies it."""
    destination = services.config.backup_destination
    if destination is None:
        return
    try:
        await asyncio.to_thread(erasure_ledger.mirror, services.config.erasure_ledger_path,
                                destination / erasure_ledger.FILE_NAME)
    except OSError as exc:
        log.error("copying the erasure ledger to the backup destination failed",
                  extra={"error": type(exc).__name__})


@dataclass
class BatchResult:
    purged: list[str]
    refusals: dict[str, policy.Refusal]
    failed: list[str]
    # Purged by another run or replica at the same time: done, and not by this run.
    elsewhere: list[str]


async def purge_batch(services: Services, ids: list[str], request: PurgeRequest,
                      check_erasure: bool = False) -> BatchResult:
    """Purges (or finishes purging) recordings."""
    marked, refusals, elsewhere = await _mark_and_destroy(services, ids, request,
                                                          check_erasure)
    if not marked:
        return BatchResult([], refusals, [], elsewhere)
    gone, kept = await _delete_blobs(services, marked)
    purged = await _tombstone_all(services, gone, request, kept)
    if purged:
        await mirror_ledger(services)
    done = set(purged)
    unfinished = [r.id for r in marked if r.id not in done]
    if unfinished:
        # Two runs can take up the same interrupted recording: the other one's tombstone
        # is not this run's failure.
        async with services.database.read() as conn:
            now_purged = {r.id for r in await catalog.get_recordings(conn, unfinished)
                          if r.state == "purged"}
        elsewhere += [i for i in unfinished if i in now_purged]
        unfinished = [i for i in unfinished if i not in now_purged]
    return BatchResult(purged, refusals, unfinished, elsewhere)


async def erase(services: Services, actor: Actor, origin: Origin, recording_id: str,
                reason: str, request_reference: str | None) -> catalog.Recording:
    """Erasure on request: now, or a 409 saying exactly why not and until when."""
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
    if rec is None:
        raise NotFound()
    if rec.state == "purged":
        return rec  # already erased: the tombstone is the answer
    request = PurgeRequest(actor, origin, "erasure", f"erasure request: {reason}",
                           {"request_reference": request_reference})
    result = await purge_batch(services, [recording_id], request, check_erasure=True)
    refusal = result.refusals.get(recording_id)
    if refusal is not None:
        await auditing.record(services, auditing.event(
            actor, origin, "erasure", "denied", recording_id=recording_id,
            reason=refusal.reason, detail={"request_reference": request_reference,
                                           "until": rfc3339(refusal.until)}))
        raise Refused(refusal.reason, refusal.detail, refusal.until)
    if result.failed:
        raise StorageError("the recording's blob could not be deleted; retried by the next "
                           "purge run")
    async with services.database.read() as conn:
        erased = await catalog.get_recording(conn, recording_id)
    assert erased is not None
    await services.database.truncate_wal()
    return erased


async def run_purge(services: Services, actor: Actor, origin: Origin,
                    dry_run: bool) -> dict[str, Any]:
    started = services.clock()
    run_id = "run_" + secrets.token_urlsafe(12)
    purged: list[str] = []
    skipped: list[dict[str, Any]] = []
    # Purges are the retention system's acts, whoever started the run.
    request = PurgeRequest(RETENTION_ACTOR, origin, "purge", "retention expired",
                           {"run_id": run_id, "triggered_by": actor.name})
    async with services.database.read() as conn:
        interrupted = await retention_store.purging_ids(conn)
    size = services.config.purge_batch
    pages = [interrupted[i : i + size] for i in range(0, len(interrupted), size)]
    after: tuple[datetime, str] | None = None
    while True:
        if not pages:
            async with services.database.read() as conn:
                due = await retention_store.due(conn, started, after, size)
            if not due:
                break
            after = due[-1]
            pages.append([recording_id for _, recording_id in due])
        page = pages.pop(0)
        if dry_run:
            async with services.database.read() as conn:
                recs = await catalog.get_recordings(conn, page)
            for rec in recs:
                blocker = policy.purge_blocker([c for _, c in rec.legal_holds], rec.restricted)
                if blocker is not None and rec.state == "active":
                    skipped.append({"id": rec.id, "reason": blocker.reason})
                elif rec.state != "purged":
                    purged.append(rec.id)
            continue
        try:
            result = await purge_batch(services, page, request)
        except (StorageError, SQLAlchemyError, OSError) as exc:
            # This page's trouble must not stop the others; the next run retries it.
            log.error("purge of a batch failed", extra={"error": type(exc).__name__})
            result = BatchResult([], {}, page, [])
        purged += result.purged
        skipped += [{"id": i, "reason": r.reason} for i, r in result.refusals.items()]
        skipped += [{"id": i, "reason": "purged_elsewhere"} for i in result.elsewhere]
        skipped += [{"id": i, "reason": "error"} for i in result.failed]
    # Call records past [coverage] retention_days: personal data whose purpose (finding
    # calls never recorded) has lapsed. A dry run counts nothing.
    calls_purged = 0 if dry_run else await calls.purge_expired(services)
    async with services.database.write() as conn:
        changes = await retention_store.unreported_changes(
            conn, reported_in=None if dry_run else run_id)
        run = {"run_id": run_id, "dry_run": dry_run, "actor": actor.name,
               "started_at": started, "finished_at": services.clock(), "purged": purged,
               "skipped": skipped, "retention_changes": [
                   {**c, "changed_at": rfc3339(c["changed_at"])} for c in changes],
               "call_records_purged": calls_purged}
        await retention_store.insert_run(conn, run)
        await auditing.append(services, conn, auditing.event(
            actor, origin, "purge_run", "allowed",
            detail={"run_id": run_id, "dry_run": dry_run, "purged": len(purged),
                    "skipped": len(skipped), "call_records_purged": calls_purged}))
    if purged and not dry_run:
        await services.database.truncate_wal()
        log.info("purge run", extra={"run_id": run_id, "purged": len(purged),
                                     "skipped": len(skipped)})
    return run_json(run)


async def list_runs(services: Services, cursor: str | None,
                    limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Purge runs, newest first, keyset-paged."""
    async with services.database.read() as conn:
        runs = await retention_store.list_runs(conn, decode_cursor(cursor), limit + 1)
    return page_of(runs, limit, lambda r: (r["started_at"], r["run_id"]))


async def get_run(services: Services, run_id: str) -> dict[str, Any]:
    async with services.database.read() as conn:
        run = await retention_store.get_run(conn, run_id)
    if run is None:
        raise NotFound("no such purge run")
    return run


# Due recordings a preview lists; the count goes on to COUNT_CAP.
PREVIEW = 50
COUNT_CAP = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DueRecording:
    recording: catalog.Recording
    # Why it is kept past its date (a legal hold and its cases, a restriction), or None:
    # the next run purges it.
    kept: policy.Refusal | None


async def preview(services: Services, limit: int = PREVIEW) -> tuple[int, list[DueRecording]]:
    """What the next purge run would do, without doing it or recording a run: how many
    recordings are due (up to COUNT_CAP), and the first ``limit`` of them, longest
    overdue first, each with what keeps it if anything does. Two ranges of the purge_at
    index, whatever the catalog's size."""
    now = services.clock()
    async with services.database.read() as conn:
        (count,) = await catalog.count_falling_due(conn, [_EPOCH, now + timedelta.resolution],
                                                   COUNT_CAP)
        due = await retention_store.due(conn, now, None, limit)
        recs = {r.id: r for r in await catalog.get_recordings(conn, [i for _, i in due])}
    return count, [DueRecording(recs[i], policy.purge_blocker(
        [case for _, case in recs[i].legal_holds], recs[i].restricted))
        for _, i in due if i in recs]


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    return {**run, "started_at": rfc3339(run["started_at"]),
            "finished_at": rfc3339(run["finished_at"])}


# --- retention periods from configuration ----------------------------------------------


# Recordings recomputed per transaction when a purpose's retention changes: the writer is
# free between batches, so uploads and audited accesses go on during a recompute of millions.
RECOMPUTE_BATCH = 1_000


async def apply_configured_retention(services: Services) -> list[dict[str, Any]]:
    """Recomputes expiries of stored recordings whose purpose's retention or legal basis
    changed in the configuration; the next purge run reports what moved. A purpose's new
    policy is recorded (and audited) with its last batch: a recompute cut short is redone
    from the start at the next start, and setting an expiry twice sets it to the same."""
    now = services.clock()
    changes = []
    async with services.database.read() as conn:
        applied = await retention_store.applied_policies(conn)
    for purpose in services.config.purposes.values():
        previous = applied.get(purpose.name)
        if previous == (purpose.legal_basis, purpose.retention_months):
            continue
        moved, after = 0, ""
        while True:
            async with services.database.write() as conn:
                rows = await retention_store.purpose_rows_of(conn, purpose.name, after,
                                                             RECOMPUTE_BATCH)
                for recording_id, started_at in rows:
                    await retention_store.set_expiry(
                        conn, recording_id, purpose.name,
                        policy.add_months(started_at, purpose.retention_months),
                        purpose.legal_basis)
                    await _recompute_purge_at(services, conn, recording_id)
                moved += len(rows)
                if len(rows) == RECOMPUTE_BATCH:
                    after = rows[-1][0]
                    continue
                if previous is not None:
                    change = {"purpose": purpose.name, "from_months": previous[1],
                              "to_months": purpose.retention_months, "recordings": moved}
                    await retention_store.record_change(conn, purpose.name, previous[1],
                                                        purpose.retention_months, moved, now)
                    await auditing.append(services, conn, auditing.event(
                        RETENTION_ACTOR, SYSTEM_ORIGIN, "retention_recomputed", "allowed",
                        detail={"changes": [change]}))
                    changes.append(change)
                await retention_store.record_policy(conn, purpose.name, purpose.legal_basis,
                                                    purpose.retention_months, now)
                break
    return changes
