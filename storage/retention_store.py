"""Catalog queries of retention: purposes, restriction, legal holds, purge state and runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, or_, select, update

from storage import keyset
from storage.database import Conn
from storage.schema import (
    collection_clips,
    evaluation_history,
    evaluations,
    kept_blobs,
    legal_hold_recordings,
    legal_holds,
    moments,
    purge_runs,
    purpose_policies,
    recording_commitments,
    recording_purposes,
    recording_waveforms,
    recordings,
    retention_changes,
)

# Personal fields a tombstone no longer holds.
PERSONAL_FIELDS = ("call_id", "agent_id", "customer_id", "phone_number", "queue")


# --- purposes and restriction ----------------------------------------------------------


async def upsert_purpose(conn: Conn, recording_id: str, purpose: str,
                         legal_basis: str, expires_at: datetime) -> None:
    """Adds a purpose, or reinstates a withdrawn one (new consent, new basis)."""
    c = recording_purposes.c
    exists = (await conn.execute(select(c.purpose).where(
        c.recording_id == recording_id, c.purpose == purpose))).first()
    if exists is None:
        await conn.execute(insert(recording_purposes).values(
            recording_id=recording_id, purpose=purpose, legal_basis=legal_basis,
            expires_at=expires_at))
    else:
        await conn.execute(update(recording_purposes).where(
            c.recording_id == recording_id, c.purpose == purpose).values(
            legal_basis=legal_basis, expires_at=expires_at, withdrawn_at=None,
            withdrawal_reason=None))


async def withdraw_purpose(conn: Conn, recording_id: str, purpose: str,
                           now: datetime, reason: str) -> None:
    c = recording_purposes.c
    await conn.execute(update(recording_purposes).where(
        c.recording_id == recording_id, c.purpose == purpose, c.withdrawn_at.is_(None))
        .values(withdrawn_at=now, withdrawal_reason=reason))


async def set_purge_at(conn: Conn, recording_id: str, purge_at: datetime) -> None:
    await conn.execute(update(recordings).where(recordings.c.id == recording_id)
                       .values(purge_at=purge_at))


async def set_restriction(conn: Conn, recording_id: str,
                          reason: str | None, now: datetime | None) -> None:
    await conn.execute(update(recordings).where(recordings.c.id == recording_id).values(
        restriction_reason=reason, restriction_placed_at=now))


# --- legal holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    id: str
    case_reference: str
    reason: str
    placed_at: datetime
    placed_by: str
    customer_id: str | None
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None
    recording_ids: tuple[str, ...]


async def _holds(conn: Conn, rows: Iterable[Any]) -> list[Hold]:
    rows = list(rows)
    if not rows:
        return []
    links = (await conn.execute(
        select(legal_hold_recordings).where(
            legal_hold_recordings.c.hold_id.in_([r.id for r in rows]))
        .order_by(legal_hold_recordings.c.recording_id))).all()
    by_hold: dict[str, list[str]] = {r.id: [] for r in rows}
    for link in links:
        by_hold[link.hold_id].append(link.recording_id)
    return [Hold(r.id, r.case_reference, r.reason, r.placed_at, r.placed_by, r.customer_id,
                 r.released_at, r.released_by, r.release_reason, tuple(by_hold[r.id]))
            for r in rows]


async def insert_hold(conn: Conn, hold_id: str, case_reference: str, reason: str,
                      now: datetime, actor: str, customer_id: str | None,
                      recording_ids: Iterable[str]) -> None:
    await conn.execute(insert(legal_holds).values(
        id=hold_id, case_reference=case_reference, reason=reason, placed_at=now,
        placed_by=actor, customer_id=customer_id))
    await link_hold(conn, hold_id, recording_ids)


async def link_hold(conn: Conn, hold_id: str, recording_ids: Iterable[str]) -> None:
    rows = [{"hold_id": hold_id, "recording_id": rid} for rid in dict.fromkeys(recording_ids)]
    if rows:
        await conn.execute(insert(legal_hold_recordings), rows)


async def active_customer_holds(conn: Conn, customer_id: str) -> list[str]:
    rows = await conn.execute(select(legal_holds.c.id).where(
        legal_holds.c.customer_id == customer_id, legal_holds.c.released_at.is_(None)))
    return [r.id for r in rows]


async def get_hold(conn: Conn, hold_id: str) -> Hold | None:
    found = await _holds(conn, (await conn.execute(
        select(legal_holds).where(legal_holds.c.id == hold_id))).all())
    return found[0] if found else None


async def list_holds(conn: Conn, after: tuple[datetime, str] | None,
                     limit: int) -> list[Hold]:
    c = legal_holds.c
    query = select(legal_holds).order_by(c.placed_at, c.id).limit(limit)
    if after is not None:
        query = query.where(keyset.after(c.placed_at, c.id, after))
    return await _holds(conn, (await conn.execute(query)).all())


async def release_hold(conn: Conn, hold_id: str, now: datetime, actor: str,
                       reason: str) -> bool:
    result = await conn.execute(update(legal_holds).where(
        legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None)).values(
        released_at=now, released_by=actor, release_reason=reason))
    return bool(result.rowcount)


async def recording_ids_of_customer(conn: Conn, customer_id: str) -> list[str]:
    rows = await conn.execute(select(recordings.c.id).where(
        recordings.c.customer_id == customer_id, recordings.c.state != "purged"))
    return [r.id for r in rows]


# --- purge -----------------------------------------------------------------------------


async def purging_ids(conn: Conn) -> list[str]:
    """Purges a crash interrupted."""
    rows = await conn.execute(select(recordings.c.id).where(recordings.c.state == "purging"))
    return [r.id for r in rows]


async def due(conn: Conn, now: datetime, after: tuple[datetime, str] | None,
              limit: int) -> list[tuple[datetime, str]]:
    """Active recordings whose purge_at has passed, keyset-paged on (purge_at, id).

    Served by the index on purge_at: its cost follows the number due, not the catalog.
    """
    c = recordings.c
    query = (select(c.purge_at, c.id).where(c.purge_at <= now, c.state == "active")
             .order_by(c.purge_at, c.id).limit(limit))
    if after is not None:
        query = query.where(keyset.after(c.purge_at, c.id, after))
    return [(r.purge_at, r.id) for r in await conn.execute(query)]


async def mark_purging_and_destroy_keys(conn: Conn, recording_ids: list[str],
                                        reason: str, erasure: bool = False) -> None:
    """Marks recordings ``purging`` and destroys their wrapped data keys (crypto-shredding).

    Compare-and-set on the state: of two replicas, only one marks a recording. What people
    wrote about the calls goes too; an erasure also takes the training clips cut from them
    (at a purge they stay, unplayable, saying why).
    """
    await conn.execute(update(recordings).where(
        recordings.c.id.in_(recording_ids), recordings.c.state == "active").values(
        state="purging", purge_reason=reason))
    await conn.execute(update(recordings).where(
        recordings.c.id.in_(recording_ids), recordings.c.state == "purging").values(
        wrapped_dek=None, key_version=None))
    # Sealed under the destroyed key, so unreadable already; gone with it all the same.
    await conn.execute(delete(recording_waveforms).where(
        recording_waveforms.c.recording_id.in_(recording_ids)))
    await conn.execute(delete(recording_commitments).where(
        recording_commitments.c.recording_id.in_(recording_ids)))
    # What people noted about the call goes with it; an evaluation keeps its score.
    await conn.execute(delete(moments).where(moments.c.recording_id.in_(recording_ids)))
    evaluated = select(evaluations.c.id).where(evaluations.c.recording_id.in_(recording_ids))
    await conn.execute(update(evaluations).where(
        evaluations.c.recording_id.in_(recording_ids)).values(notes=None))
    await conn.execute(update(evaluation_history).where(
        evaluation_history.c.evaluation_id.in_(evaluated)).values(notes=None, comment=None))
    clips = collection_clips.c.recording_id.in_(recording_ids)
    if erasure:
        await conn.execute(delete(collection_clips).where(clips))
    else:
        await conn.execute(update(collection_clips).where(clips).values(note=None))


@dataclass(frozen=True)
class Shredded:
    """A recording whose key is destroyed, ready for its tombstone."""

    id: str
    sha256: str
    purge_reason: str | None
    blob_name: str | None


async def lock_shredded(conn: Conn, ids: list[str]) -> list[Shredded]:
    """Locks (PostgreSQL) the recordings among ``ids`` still waiting for their tombstone."""
    rows = await conn.execute(
        select(recordings.c.id, recordings.c.sha256, recordings.c.purge_reason,
               recordings.c.blob_name)
        .where(recordings.c.id.in_(ids), recordings.c.state == "purging",
               recordings.c.wrapped_dek.is_(None))
        .order_by(recordings.c.id).with_for_update())
    return [Shredded(r.id, r.sha256, r.purge_reason, r.blob_name) for r in rows]


async def tombstone_many(conn: Conn, receipts: dict[str, str],
                         now: datetime) -> None:
    """Tombstones locked recordings (see lock_shredded) in a few statements."""
    if not receipts:
        return
    await conn.execute(
        update(recordings).where(recordings.c.id == bindparam("rid")).values(
            state="purged", purged_at=now, deletion_receipt=bindparam("receipt"),
            blob_name=None, purge_at=None, restriction_reason=None,
            restriction_placed_at=None, **{f: None for f in PERSONAL_FIELDS}),
        [{"rid": rid, "receipt": receipt} for rid, receipt in receipts.items()])
    # Withdrawal reasons are free text a compliance officer wrote: may name the person.
    await conn.execute(update(recording_purposes).where(
        recording_purposes.c.recording_id.in_(list(receipts))).values(withdrawal_reason=None))


async def keep_blobs(conn: Conn, kept: dict[str, tuple[str, datetime | None]]) -> None:
    """Blobs (name -> (recording id, until)) a write-once store keeps after their purge."""
    if kept:
        await conn.execute(insert(kept_blobs), [
            {"blob_name": name, "recording_id": rid, "kept_until": until}
            for name, (rid, until) in kept.items()])


async def kept_blobs_due(conn: Conn, now: datetime, limit: int) -> list[str]:
    """Kept blobs whose lock has lapsed by ``now`` (or that a store hold kept)."""
    c = kept_blobs.c
    rows = await conn.execute(select(c.blob_name).where(
        or_(c.kept_until <= now, c.kept_until.is_(None))).order_by(c.kept_until).limit(limit))
    return [r.blob_name for r in rows]


async def blob_released(conn: Conn, name: str, until: datetime | None, deleted: bool) -> None:
    c = kept_blobs.c
    if deleted:
        await conn.execute(delete(kept_blobs).where(c.blob_name == name))
    else:
        await conn.execute(update(kept_blobs).where(c.blob_name == name)
                           .values(kept_until=until))


async def insert_run(conn: Conn, run: dict[str, Any]) -> None:
    await conn.execute(insert(purge_runs).values(
        id=run["run_id"], dry_run=run["dry_run"], actor=run["actor"],
        started_at=run["started_at"], finished_at=run["finished_at"],
        purged=json.dumps(run["purged"]), skipped=json.dumps(run["skipped"]),
        retention_changes=json.dumps(run["retention_changes"]),
        call_records_purged=run["call_records_purged"]))


def _run(r: Any) -> dict[str, Any]:
    return {"run_id": r.id, "dry_run": r.dry_run, "actor": r.actor,
            "started_at": r.started_at, "finished_at": r.finished_at,
            "purged": json.loads(r.purged), "skipped": json.loads(r.skipped),
            "retention_changes": json.loads(r.retention_changes),
            "call_records_purged": r.call_records_purged}


async def list_runs(conn: Conn, before: tuple[datetime, str] | None,
                    limit: int) -> list[dict[str, Any]]:
    """Newest first, keyset-paged on (started_at, id)."""
    c = purge_runs.c
    query = select(purge_runs).order_by(c.started_at.desc(), c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(keyset.before(c.started_at, c.id, before))
    return [_run(r) for r in await conn.execute(query)]


async def get_run(conn: Conn, run_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(purge_runs).where(purge_runs.c.id == run_id))).first()
    return None if row is None else _run(row)


# --- retention periods from configuration ----------------------------------------------


async def applied_policies(conn: Conn) -> dict[str, tuple[str, int]]:
    rows = await conn.execute(select(purpose_policies))
    return {r.purpose: (r.legal_basis, r.retention_months) for r in rows}


async def record_policy(conn: Conn, purpose: str, legal_basis: str, months: int,
                        now: datetime) -> None:
    await conn.execute(delete(purpose_policies).where(purpose_policies.c.purpose == purpose))
    await conn.execute(insert(purpose_policies).values(
        purpose=purpose, legal_basis=legal_basis, retention_months=months, applied_at=now))


async def purpose_rows_of(conn: Conn, purpose: str, after: str,
                          limit: int) -> list[tuple[str, datetime]]:
    """(recording id, started_at) of stored recordings kept for ``purpose`` with an id
    after ``after``, in id order: a page of the (purpose, recording_id) index."""
    p = recording_purposes.c
    rows = await conn.execute(
        select(recordings.c.id, recordings.c.started_at)
        .join(recording_purposes, p.recording_id == recordings.c.id)
        .where(p.purpose == purpose, p.recording_id > after, recordings.c.state == "active")
        .order_by(p.recording_id).limit(limit))
    return [(r.id, r.started_at) for r in rows]


async def set_expiry(conn: Conn, recording_id: str, purpose: str,
                     expires_at: datetime, legal_basis: str) -> None:
    c = recording_purposes.c
    await conn.execute(update(recording_purposes).where(
        c.recording_id == recording_id, c.purpose == purpose).values(
        expires_at=expires_at, legal_basis=legal_basis))


async def record_change(conn: Conn, purpose: str, from_months: int | None,
                        to_months: int, count: int, now: datetime) -> None:
    await conn.execute(insert(retention_changes).values(
        purpose=purpose, from_months=from_months, to_months=to_months, recordings=count,
        changed_at=now))


async def unreported_changes(conn: Conn, reported_in: str | None) -> list[dict[str, Any]]:
    """Retention changes no run has reported yet; with ``reported_in`` (a run id) they are
    marked reported by that run, without it (a dry run) they stay for the next one."""
    c = retention_changes.c
    rows = (await conn.execute(select(retention_changes).where(
        c.reported_in_run.is_(None)).order_by(c.id))).all()
    if rows and reported_in is not None:
        await conn.execute(update(retention_changes).where(
            c.id.in_([r.id for r in rows])).values(reported_in_run=reported_in))
    return [{"purpose": r.purpose, "from_months": r.from_months, "to_months": r.to_months,
             "recordings": r.recordings, "changed_at": r.changed_at} for r in rows]


async def update_metadata(conn: Conn, recording_id: str,
                          values: dict[str, Any]) -> None:
    await conn.execute(update(recordings).where(recordings.c.id == recording_id)
                       .values(**values))
