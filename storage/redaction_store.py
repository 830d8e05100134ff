"""Catalog queries of redactions: the swap of a recording to its rewritten audio, in one
transaction, and the record of each redaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from storage.database import Conn
from storage.schema import recording_commitments, recording_waveforms, recordings, redactions


async def swap_audio(conn: Conn, recording_id: str, old_blob: str, new: dict[str, Any],
                     sealed_waveform: bytes | None, sealed_salt_key: bytes) -> bool:
    """Points the recording at its rewritten audio under its new data key; the old key is
    overwritten here (crypto-shredding the old blob). Compare-and-set on the blob: False
    when the recording changed since the rewrite began (another redaction, a purge)."""
    result = await conn.execute(update(recordings).where(
        recordings.c.id == recording_id, recordings.c.state == "active",
        recordings.c.blob_name == old_blob).values(**new))
    if result.rowcount != 1:
        return False
    await conn.execute(delete(recording_waveforms).where(
        recording_waveforms.c.recording_id == recording_id))
    if sealed_waveform is not None:
        await conn.execute(insert(recording_waveforms), {"recording_id": recording_id,
                                                         "sealed": sealed_waveform})
    await conn.execute(update(recording_commitments).where(
        recording_commitments.c.recording_id == recording_id).values(
        sealed_salt_key=sealed_salt_key))
    return True


async def insert_redaction(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(insert(redactions), {
        **row, "spans": json.dumps(row["spans"]),
        "changed_pieces": json.dumps(row["changed_pieces"]),
        "receipt": json.dumps(row["receipt"])})


def _row(row: Any) -> dict[str, Any]:
    found: dict[str, Any] = row._asdict()
    for name in ("spans", "changed_pieces", "receipt"):
        found[name] = json.loads(found[name])
    return found


async def of_recording(conn: Conn, recording_id: str) -> list[dict[str, Any]]:
    """A recording's redactions, oldest first: the (recording_id, created_at, id) index."""
    c = redactions.c
    rows = await conn.execute(select(redactions).where(c.recording_id == recording_id)
                              .order_by(c.created_at, c.id))
    return [_row(r) for r in rows]


async def get(conn: Conn, recording_id: str, redaction_id: str) -> dict[str, Any] | None:
    c = redactions.c
    row = (await conn.execute(select(redactions).where(
        c.recording_id == recording_id, c.id == redaction_id))).first()
    return _row(row) if row is not None else None


async def last_at(conn: Conn, recording_id: str) -> datetime | None:
    c = redactions.c
    return (await conn.execute(select(c.created_at).where(c.recording_id == recording_id)
                               .order_by(c.created_at.desc()).limit(1))).scalar()
