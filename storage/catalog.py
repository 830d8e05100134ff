"""Catalog queries: recordings with their purposes, and API tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.database import Conn
from storage.errors import DuplicateCallIdError
from storage.schema import (
    audit_entries,
    legal_hold_recordings,
    legal_holds,
    recording_commitments,
    recording_purposes,
    recording_waveforms,
    recordings,
    tokens,
)


@dataclass(frozen=True)
class PurposeRow:
    purpose: str
    legal_basis: str
    expires_at: datetime
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None


@dataclass(frozen=True)
class Recording:
    id: str
    call_id: str | None
    started_at: datetime
    ended_at: datetime | None
    direction: str | None
    agent_id: str | None
    customer_id: str | None
    phone_number: str | None
    queue: str | None
    content_type: str
    size_bytes: int
    duration_seconds: float | None
    sha256: str
    blob_name: str | None
    wrapped_dek: bytes | None
    key_version: int | None
    purge_at: datetime | None
    state: str
    created_at: datetime
    restriction_reason: str | None = None
    restriction_placed_at: datetime | None = None
    purged_at: datetime | None = None
    purge_reason: str | None = None
    deletion_receipt: str | None = None
    subject_ref: str | None = None
    audio_check: str | None = None  # ok, one_sided, silent; None: not measured
    leg: str = "mixed"  # caller, callee, or mixed (both sides)
    purposes: tuple[PurposeRow, ...] = field(default=())
    # Active legal holds on the recording: (hold id, case reference).
    legal_holds: tuple[tuple[str, str], ...] = field(default=())

    @property
    def restricted(self) -> bool:
        return self.restriction_placed_at is not None


# The statements every request runs are built once: building a select and its cache key
# cost more than running it (about 0.1 ms each here, docs/benchmarks.md).
_RECORDING_BY_ID = select(recordings).where(recordings.c.id == bindparam("id"))
_RECORDING_BY_CALL_LEG = select(recordings).where(recordings.c.call_id == bindparam("call_id"),
                                                  recordings.c.leg == bindparam("leg"))
_RECORDING_BY_BLOB = select(recordings).where(recordings.c.blob_name == bindparam("blob_name"))
_PURPOSES_OF = (
    select(recording_purposes)
    .where(recording_purposes.c.recording_id.in_(bindparam("ids", expanding=True)))
    .order_by(recording_purposes.c.purpose)
)
_ACTIVE_HOLDS_OF = (
    select(legal_hold_recordings.c.recording_id, legal_holds.c.id, legal_holds.c.case_reference)
    .join(legal_holds, legal_holds.c.id == legal_hold_recordings.c.hold_id)
    .where(legal_hold_recordings.c.recording_id.in_(bindparam("ids", expanding=True)),
           legal_holds.c.released_at.is_(None))
    .order_by(legal_holds.c.placed_at, legal_holds.c.id)
)
# The same for one recording: an expanding IN is re-rendered on every execution, which
# cost more than the query on the audio path (one recording per request).
_PURPOSES_OF_ONE = (
    select(recording_purposes)
    .where(recording_purposes.c.recording_id == bindparam("id"))
    .order_by(recording_purposes.c.purpose)
)
_ACTIVE_HOLDS_OF_ONE = (
    select(legal_hold_recordings.c.recording_id, legal_holds.c.id, legal_holds.c.case_reference)
    .join(legal_holds, legal_holds.c.id == legal_hold_recordings.c.hold_id)
    .where(legal_hold_recordings.c.recording_id == bindparam("id"),
           legal_holds.c.released_at.is_(None))
    .order_by(legal_holds.c.placed_at, legal_holds.c.id)
)
_INSERT_RECORDING = insert(recordings)
_INSERT_PURPOSES = insert(recording_purposes)
_TOKEN_BY_HASH = select(tokens).where(tokens.c.token_hash == bindparam("token_hash"))


async def with_purposes(conn: Conn, rows: Sequence[Any]) -> list[Recording]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    one = len(ids) == 1
    purpose_rows = (await conn.execute(*((_PURPOSES_OF_ONE, {"id": ids[0]}) if one
                                         else (_PURPOSES_OF, {"ids": ids})))).all()
    by_id: dict[str, list[PurposeRow]] = {i: [] for i in ids}
    for p in purpose_rows:
        by_id[p.recording_id].append(
            PurposeRow(p.purpose, p.legal_basis, p.expires_at, p.withdrawn_at,
                       p.withdrawal_reason)
        )
    hold_rows = (await conn.execute(*((_ACTIVE_HOLDS_OF_ONE, {"id": ids[0]}) if one
                                      else (_ACTIVE_HOLDS_OF, {"ids": ids})))).all()
    holds: dict[str, list[tuple[str, str]]] = {i: [] for i in ids}
    for h in hold_rows:
        holds[h.recording_id].append((h.id, h.case_reference))
    return [
        Recording(**r._asdict(), purposes=tuple(by_id[r.id]), legal_holds=tuple(holds[r.id]))
        for r in rows
    ]


async def insert_recording(
    conn: Conn, values: dict[str, Any], purposes: Iterable[PurposeRow],
    sealed_waveform: bytes | None = None,
) -> Recording:
    """Inserts a recording with its purposes; returns it as ``get_recording`` would read it
    back before anything else (a legal hold) touches it."""
    try:
        await conn.execute(_INSERT_RECORDING, values)
    except IntegrityError as exc:
        raise DuplicateCallIdError("call id already stored") from exc
    ordered = sorted(purposes, key=lambda p: p.purpose)  # as _PURPOSES_OF orders them
    rows = [
        {"recording_id": values["id"], "purpose": p.purpose, "legal_basis": p.legal_basis,
         "expires_at": p.expires_at, "withdrawn_at": p.withdrawn_at,
         "withdrawal_reason": p.withdrawal_reason}
        for p in ordered
    ]
    await conn.execute(_INSERT_PURPOSES, rows)
    if sealed_waveform is not None:
        await insert_waveform(conn, values["id"], sealed_waveform)
    return Recording(**values, purposes=tuple(ordered))


async def insert_commitment(conn: Conn, recording_id: str, values: dict[str, Any]) -> None:
    await conn.execute(insert(recording_commitments), {"recording_id": recording_id,
                                                       **values})


async def commitment_of(conn: Conn, recording_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(recording_commitments).where(
        recording_commitments.c.recording_id == recording_id))).first()
    return row._asdict() if row is not None else None


async def sealed_waveform(conn: Conn, recording_id: str) -> bytes | None:
    return (await conn.execute(select(recording_waveforms.c.sealed).where(
        recording_waveforms.c.recording_id == recording_id))).scalar()


async def get_recording(conn: Conn, recording_id: str) -> Recording | None:
    rows = (await conn.execute(_RECORDING_BY_ID, {"id": recording_id})).all()
    found = await with_purposes(conn, rows)
    return found[0] if found else None


async def get_recordings(conn: Conn, ids: Sequence[str]) -> list[Recording]:
    rows = (await conn.execute(select(recordings).where(recordings.c.id.in_(ids))
                               .order_by(recordings.c.id))).all()
    return await with_purposes(conn, rows)


async def lock_recording(conn: Conn, recording_id: str) -> Recording | None:
    """Reads the recording holding its row lock (PostgreSQL) for the rest of the transaction;
    on SQLite the write transaction is already exclusive."""
    found = await lock_recordings(conn, [recording_id])
    return found[0] if found else None


async def lock_recordings(conn: Conn, ids: Sequence[str]) -> list[Recording]:
    """Reads recordings holding their row locks (PostgreSQL) until the transaction ends."""
    await conn.execute(select(recordings.c.id).where(recordings.c.id.in_(ids))
                       .order_by(recordings.c.id).with_for_update())
    return await get_recordings(conn, ids)


async def get_by_call_leg(conn: Conn, call_id: str, leg: str) -> Recording | None:
    rows = (await conn.execute(_RECORDING_BY_CALL_LEG, {"call_id": call_id, "leg": leg})).all()
    found = await with_purposes(conn, rows)
    return found[0] if found else None


async def legs_of_call(conn: Conn, call_id: str) -> list[tuple[str, str]]:
    """(recording id, leg) of each recording of a call, by leg: the (call_id, leg) key."""
    rows = await conn.execute(select(recordings.c.id, recordings.c.leg)
                              .where(recordings.c.call_id == call_id)
                              .order_by(recordings.c.leg))
    return [(r.id, r.leg) for r in rows]


async def get_by_blob_name(conn: Conn, blob_name: str) -> Recording | None:
    rows = (await conn.execute(_RECORDING_BY_BLOB, {"blob_name": blob_name})).all()
    found = await with_purposes(conn, rows)
    return found[0] if found else None


async def existing_blob_names(conn: Conn, names: Sequence[str]) -> set[str]:
    rows = await conn.execute(
        select(recordings.c.blob_name).where(recordings.c.blob_name.in_(names)))
    return {r.blob_name for r in rows}


async def holds_data(conn: Conn) -> bool:
    """Whether anything is stored that the key files protect or sign."""
    for table in (recordings, audit_entries):
        if (await conn.execute(select(table).limit(1))).first() is not None:
            return True
    return False


# --- key versions ----------------------------------------------------------------------


async def key_version_counts(conn: Conn) -> dict[int, int]:
    """Data keys per key version: a count of every live recording, for ``keys status``
    (an operator's report); what runs often asks ``key_versions_in_use``."""
    rows = await conn.execute(
        select(recordings.c.key_version, func.count())
        .where(recordings.c.wrapped_dek.is_not(None))
        .group_by(recordings.c.key_version)
    )
    return {int(version): int(count) for version, count in rows}


async def key_versions_in_use(conn: Conn, versions: Iterable[int]) -> set[int]:
    """Which of ``versions`` wrap at least one data key: one lookup in the key_version
    index each (a tombstone's key_version is NULL), whatever the catalog's size."""
    used = set()
    for version in versions:
        found = (await conn.execute(select(recordings.c.id)
                                    .where(recordings.c.key_version == version).limit(1))).first()
        if found is not None:
            used.add(version)
    return used


async def key_versions_beyond(conn: Conn, versions: Iterable[int]) -> set[int]:
    """Key versions data keys are wrapped under that are not among ``versions`` (a lookup
    for the lowest and the highest outside them, then the next after each)."""
    known = sorted(set(versions))
    found: set[int] = set()
    c = recordings.c
    for low, high in pairwise([None, *known, None]):
        query = select(c.key_version).where(c.key_version.is_not(None))
        if low is not None:
            query = query.where(c.key_version > low)
        if high is not None:
            query = query.where(c.key_version < high)
        row = (await conn.execute(query.order_by(c.key_version).limit(1))).first()
        if row is not None:
            found.add(int(row.key_version))
    return found


async def wrapped_keys_not_at(
    conn: Conn, version: int, limit: int
) -> list[tuple[str, int, bytes]]:
    """Data keys wrapped under a version older than ``version`` (versions only grow), in
    the key_version index's order: a run with nothing to move reads nothing."""
    rows = await conn.execute(
        select(recordings.c.id, recordings.c.key_version, recordings.c.wrapped_dek)
        .where(recordings.c.key_version < version, recordings.c.wrapped_dek.is_not(None))
        .order_by(recordings.c.key_version, recordings.c.id)
        .limit(limit)
    )
    return [(r.id, r.key_version, r.wrapped_dek) for r in rows]


async def replace_wrapped_key(
    conn: Conn, recording_id: str, old_version: int, new_version: int, wrapped: bytes
) -> bool:
    """Compare-and-set, so a concurrent purge or re-wrap is never overwritten."""
    result = await conn.execute(
        update(recordings)
        .where(recordings.c.id == recording_id, recordings.c.key_version == old_version,
               recordings.c.wrapped_dek.is_not(None))
        .values(key_version=new_version, wrapped_dek=wrapped)
    )
    return bool(result.rowcount)


# --- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRow:
    name: str
    roles: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    agent_id: str | None = None


def _token(row: Any) -> TokenRow:
    return TokenRow(row.name, tuple(json.loads(row.roles)), row.created_at, row.revoked_at,
                    row.expires_at, row.last_used_at, row.agent_id)


async def create_token(
    conn: Conn, name: str, token_hash: str, roles: Iterable[str], now: datetime,
    expires_at: datetime | None = None, agent_id: str | None = None,
) -> bool:
    """False when a token of that name exists already."""
    exists = (await conn.execute(select(tokens.c.name).where(tokens.c.name == name))).first()
    if exists is not None:
        return False
    await conn.execute(
        insert(tokens).values(name=name, token_hash=token_hash,
                              roles=json.dumps(sorted(set(roles))), created_at=now,
                              expires_at=expires_at, agent_id=agent_id)
    )
    return True


async def token_used(conn: Conn, name: str, now: datetime) -> None:
    await conn.execute(update(tokens).where(tokens.c.name == name).values(last_used_at=now))


async def token_by_hash(conn: Conn, token_hash: str) -> TokenRow | None:
    row = (await conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash})).first()
    return None if row is None else _token(row)


async def token_by_name(conn: Conn, name: str) -> TokenRow | None:
    row = (await conn.execute(select(tokens).where(tokens.c.name == name))).first()
    return None if row is None else _token(row)


async def list_tokens(conn: Conn) -> list[TokenRow]:
    return [_token(r) for r in await conn.execute(select(tokens).order_by(tokens.c.name))]


async def revoke_token(conn: Conn, name: str, now: datetime) -> bool:
    result = await conn.execute(
        update(tokens).where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def count_falling_due(conn: Conn, bounds: list[datetime], cap: int) -> list[int]:
    """How many active recordings fall due for purge between each pair of consecutive
    ``bounds``, counted up to ``cap`` (``cap`` means that many or more): one range of the
    (state, purge_at) index per interval, read no further than the cap."""
    c = recordings.c
    counts = []
    for start, end in pairwise(bounds):
        rows = (select(c.id).where(c.state == "active", c.purge_at >= start, c.purge_at < end)
                .limit(cap).subquery())
        query = select(func.count()).select_from(rows)
        counts.append(int((await conn.execute(query)).scalar_one()))
    return counts


async def wavs_without_waveform(conn: Conn, after_id: str, limit: int) -> list[str]:
    """Active WAV recordings with no waveform, in id order after ``after_id``: the one-off
    backfill walks the catalog by its primary key, a batch at a time."""
    r, w = recordings.c, recording_waveforms.c
    rows = await conn.execute(
        select(r.id).where(r.id > after_id, r.state == "active",
                           r.content_type == "audio/wav",
                           ~select(w.recording_id).where(w.recording_id == r.id).exists())
        .order_by(r.id).limit(limit))
    return [row.id for row in rows]


async def insert_waveform(conn: Conn, recording_id: str, sealed: bytes,
                          audio_check: str | None = None) -> None:
    """The waveform, and the silence check measured with it where none was."""
    await conn.execute(insert(recording_waveforms), {"recording_id": recording_id,
                                                     "sealed": sealed})
    if audio_check is not None:
        await conn.execute(update(recordings).where(
            recordings.c.id == recording_id, recordings.c.audio_check.is_(None)).values(
            audio_check=audio_check))
