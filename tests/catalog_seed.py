"""A catalog of many recordings and audit entries, written through the storage layer.

Uploading millions of recordings over HTTP would measure ingest; the plan tests and
bench/scale.py need the catalog's shape instead: calls spread over days at a steady rate
(so that one agent's day holds the same calls at any size), 500 agents, 40 queues, a
customer for every five calls, a few recordings due for purge, purged tombstones among them.
Rows carry no blobs (nothing here reads audio) and a placeholder wrapped key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from storage import audit_log
from storage.database import Database
from storage.schema import audit_checkpoints, recording_purposes, recordings

# Calls per day, whatever the size: agent + day finds ~10 calls at 20,000 and at 10,000,000.
CALLS_PER_DAY = 5_000
AGENTS = 500
QUEUES = 40
# The newest seeded call starts here; older ones go back a day per CALLS_PER_DAY calls.
NEWEST = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
BATCH = 5_000
# Audit entries at a steady rate too: half as many as calls (seconds between two).
ENTRY_SPACING = 86_400 / (CALLS_PER_DAY / 2)


def agent_of(i: int) -> str:
    return f"A-{i % AGENTS:03d}"


def customer_of(i: int) -> str:
    return f"C-{i // 5:08d}"


def started_of(i: int) -> datetime:
    """Call i starts i / CALLS_PER_DAY days before NEWEST (newest is call 0)."""
    return NEWEST - timedelta(seconds=i * 86_400 / CALLS_PER_DAY)


def _row(i: int, now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rid = f"rec_seed{i:010d}"
    started = started_of(i)
    # One in 1,000 is a tombstone; 20 have fallen due (purge_at passed) at any size, as
    # what falls due follows the calls a day brings, not the catalog's size.
    purged = i % 1000 == 999
    due = i % 1000 == 1 and i < 20_000
    purge_at = now - timedelta(days=1) if due else started + timedelta(days=3650)
    row: dict[str, Any] = {
        "id": rid, "call_id": None if purged else f"call-{i:010d}",
        "agent_id": None if purged else agent_of(i),
        "customer_id": None if purged else customer_of(i),
        "phone_number": None if purged else f"+35840{i % 10_000_000:07d}",
        "queue": None if purged else f"queue-{i % QUEUES:02d}",
        "direction": "inbound" if i % 3 else "outbound",
        "started_at": started, "ended_at": started + timedelta(seconds=180),
        "content_type": "audio/wav", "size_bytes": 2_880_044,
        "duration_seconds": float(30 + i * 7919 % 900),
        "sha256": hashlib.sha256(rid.encode()).hexdigest(),
        "blob_name": None, "wrapped_dek": None if purged else b"\x00" * 60,
        "key_version": None if purged else 1,
        "purge_at": None if purged else purge_at,
        "state": "purged" if purged else "active",
        "created_at": started + timedelta(seconds=200),
        "purged_at": now - timedelta(days=2) if purged else None,
        "purge_reason": "retention expired" if purged else None,
        "subject_ref": hashlib.sha256(customer_of(i).encode()).hexdigest(),
    }
    expires = purge_at if not purged else started + timedelta(days=30)
    purposes = [{"recording_id": rid, "purpose": p, "legal_basis": basis,
                 "expires_at": expires, "withdrawn_at": None, "withdrawal_reason": None}
                for p, basis in (("training", "consent"), ("legal_protection",
                                                           "legitimate_interest"))]
    return row, purposes


async def seed_recordings(database: Database, count: int, now: datetime,
                          first: int = 0) -> None:
    """Recordings ``first`` .. ``first + count - 1`` (call 0 is the newest)."""
    for start in range(first, first + count, BATCH):
        rows, purposes = [], []
        for i in range(start, min(start + BATCH, first + count)):
            row, its = _row(i, now)
            rows.append(row)
            purposes += its
        async with database.write() as conn:
            await conn.execute(insert(recordings), rows)
            await conn.execute(insert(recording_purposes), purposes)


def _event(i: int) -> audit_log.AuditEvent:
    stream = i % 4 != 0
    return audit_log.AuditEvent(
        actor=f"supervisor-{i % 50}", roles=("supervisor",),
        action="stream" if stream else "search",
        recording_id=f"rec_seed{(i * 7) % 1_000_000:010d}" if stream else None,
        purpose="training" if stream else None, outcome="allowed",
        detail={"range": [0, 65535]} if stream else {"filter": {"agent_id": agent_of(i)}})


async def seed_audit(database: Database, count: int, now: datetime,
                     batch: int = 2_000, checkpoint_every: int = 0) -> None:
    """``count`` chained entries, as appends make them, spread over the days before now;
    with ``checkpoint_every``, rows of checkpoints that often (unsigned placeholders: for
    the shape of the table, not for verification)."""
    done = 0
    while done < count:
        n = min(batch, count - done)
        at = now - timedelta(seconds=(count - done) * ENTRY_SPACING)
        async with database.write() as conn:
            await audit_log.append_many(conn, [(_event(done + k), at) for k in range(n)])
            if checkpoint_every:
                await conn.execute(insert(audit_checkpoints), [
                    {"size": size, "root_hash": bytes(32), "signed_at": at, "note": "seed"}
                    for size in range(done + checkpoint_every, done + n + 1,
                                      checkpoint_every)])
        done += n


async def analyze(database: Database) -> None:
    """Gives the planner the statistics a catalog in use has (PostgreSQL's autovacuum and
    SQLite's ``PRAGMA optimize`` gather them on their own over time)."""
    from sqlalchemy import text

    async with database.write() as conn:
        await conn.execute(text("ANALYZE"))


async def seed_quality(database: Database, count: int) -> None:
    """An evaluation of every other call among the first ``count`` (an hour after the call,
    with its history), and a collection of 100 clips shared with 50 agents."""
    from storage.schema import (
        collection_clips,
        collection_shares,
        collections,
        evaluation_history,
        evaluations,
    )

    for start in range(0, count, BATCH):
        rows, steps = [], []
        for i in range(start, min(start + BATCH, count), 2):
            at = started_of(i) + timedelta(hours=1)
            rows.append({
                "id": f"eval_seed{i:010d}", "recording_id": f"rec_seed{i:010d}",
                "agent_id": agent_of(i), "queue": f"queue-{i % QUEUES:02d}",
                "form": "standard", "form_version": 1, "evaluator": f"supervisor-{i % 50}",
                "score": float(i % 101), "critical_failed": "[]", "answers": "{}",
                "notes": None, "call_started_at": started_of(i), "created_at": at,
                "version": 1, "status": "disputed" if i % 10 == 0 else "open"})
            steps.append({"evaluation_id": f"eval_seed{i:010d}", "version": 1,
                          "kind": "scored", "actor": f"supervisor-{i % 50}", "at": at})
            if i % 10 == 0:
                steps.append({"evaluation_id": f"eval_seed{i:010d}", "version": 1,
                              "kind": "disputed", "actor": "agent", "at": at})
        async with database.write() as conn:
            await conn.execute(insert(evaluations), rows)
            await conn.execute(insert(evaluation_history), steps)
    async with database.write() as conn:
        await conn.execute(insert(collections), [{
            "id": f"col_seed{n:04d}", "name": f"collection {n}", "description": None,
            "owner": "supervisor-1", "created_at": NEWEST - timedelta(minutes=n)}
            for n in range(200)])
        await conn.execute(insert(collection_clips), [{
            "id": f"clip_seed{n:06d}", "collection_id": f"col_seed{n % 200:04d}",
            "recording_id": f"rec_seed{n:010d}", "start_seconds": 0.0, "end_seconds": 5.0,
            "note": None, "added_by": "supervisor-1", "created_at": NEWEST}
            for n in range(min(count, 20_000))])
        await conn.execute(insert(collection_shares), [{
            "collection_id": f"col_seed{n % 200:04d}", "agent_id": agent_of(n),
            "shared_by": "supervisor-1", "shared_at": NEWEST} for n in range(1000)])


async def seed_calls(database: Database, count: int) -> None:
    """A call record for each of the first ``count`` calls, from two PBXs, reconciled: one
    in 50 never recorded (its call id is no recording's), one in 100 unanswered, and the
    newest 20 pending."""
    from storage.schema import call_records

    statuses = ("recorded", "short", "recorded", "recorded")
    for start in range(0, count, BATCH):
        rows = []
        for i in range(start, min(start + BATCH, count)):
            started = started_of(i)
            missing, unanswered = i % 50 == 7, i % 100 == 3
            rows.append({
                "id": f"call_seed{i:010d}", "source": f"pbx-{i % 2}",
                "call_id": f"lost-{i:010d}" if missing else f"call-{i:010d}",
                "started_at": started,
                "answered_at": None if unanswered else started + timedelta(seconds=5),
                "ended_at": started + timedelta(seconds=180), "direction": "inbound",
                "agent_id": agent_of(i), "queue": f"queue-{i % QUEUES:02d}",
                "customer_id": customer_of(i), "phone_number": None,
                "expect_recording": True,
                "status": ("not_expected" if unanswered else "pending" if i < 20
                           else "missing" if missing else statuses[i % 4]),
                "recorded_seconds": None, "checked_at": None,
                "created_at": started + timedelta(seconds=190)})
        async with database.write() as conn:
            await conn.execute(insert(call_records), rows)
