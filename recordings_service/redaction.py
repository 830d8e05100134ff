"""Redaction: spans of a stored call replaced for good (card data said aloud, other personal
data), with a signed receipt and a proof that nothing else changed.

The steps, each safe to be killed after:
1. the audio is read and rewritten, span by span, into a new blob under a **new** data key
   (the committed pieces it changes are noted, with their leaves as committed);
2. one transaction points the recording at the new blob and key, overwriting the old key
   (the old blob is noise from then on), re-seals the waveform and the commitment's salt
   key under the new key, appends the audit entry and stores the signed receipt;
3. the old blob is deleted (a write-once store keeps it until its lock lapses, noise).
Killed in 1, the new blob has no key anywhere and the old recording is whole; the orphan
sweep removes the new blob. Killed between 2 and 3, the old blob's key is gone; the sweep
removes it. Never both readable, never neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recordings_service import access, auditing, commitment, ingest, jobs, waveform, worm
from recordings_service.auditing import SYSTEM_ORIGIN, Origin
from recordings_service.auth import Actor
from recordings_service.errors import BadRequest, Gone, NotFound, Refused, Unprocessable
from recordings_service.receipts import REDACTION_RECEIPT_TYPE, signed
from recordings_service.redaction_audio import (
    Filler,
    Layout,
    Span,
    audio_end_of,
    byte_ranges,
    layout_of,
)
from recordings_service.redaction_audio import merged as merged_spans
from recordings_service.retention import mirror_ledger
from recordings_service.services import Services
from recordings_service.times import rfc3339
from storage import audit_log, catalog, erasure_ledger, redaction_store, retention_store
from storage.blobstore.base import new_blob_name
from storage.encrypted_blob import EncryptingWriter
from storage.errors import BlobLockedError, StorageError
from storage.keyring import new_dek

log = logging.getLogger(__name__)

REASONS = ("pci", "pii", "other")
FILLS = ("silence", "tone")
MAX_SPANS = 100
_FIELDS = {"spans", "reason", "fill"}


def _invalid(detail: str) -> BadRequest:
    return BadRequest("invalid_redaction", detail)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise _invalid(f"{name} must be a whole number of milliseconds from 0")
    return value


def parse_request(body: Any) -> tuple[list[Span], str, str]:
    """The spans, reason and fill of a redaction request, or a 400 naming what is wrong."""
    if not isinstance(body, Mapping):
        raise _invalid("the body is a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(f"unknown fields: {', '.join(unknown)}")
    reason, fill = body.get("reason"), body.get("fill", "silence")
    if reason not in REASONS:
        raise _invalid(f"reason must be one of {', '.join(REASONS)}")
    if fill not in FILLS:
        raise _invalid(f"fill must be one of {', '.join(FILLS)}")
    raw = body.get("spans")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_SPANS:
        raise _invalid(f"spans is a list of 1 to {MAX_SPANS} spans")
    spans = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) - {"start_ms", "end_ms", "channel"}:
            raise _invalid(f"span {i} is an object of start_ms, end_ms and channel")
        start, end = _int(item.get("start_ms"), "start_ms"), _int(item.get("end_ms"), "end_ms")
        if start >= end:
            raise _invalid(f"span {i} ends before it starts")
        channel = item.get("channel")
        if channel is not None and (isinstance(channel, bool) or channel not in (0, 1)):
            raise _invalid(f"span {i}: channel is 0 (left) or 1 (right) of a stereo call")
        spans.append(Span(start, end, channel))
    return spans, str(reason), str(fill)


def _check_spans(spans: list[Span], layout: Layout, audio_end: int) -> None:
    frames = (audio_end - layout.audio_offset) // layout.block
    length_ms = frames * 1000 // layout.rate
    for i, span in enumerate(spans):
        if span.end_ms > length_ms:
            raise _invalid(f"span {i} ends past the recording's end ({length_ms} ms)")
        if span.channel is not None and span.channel >= layout.channels:
            raise _invalid(f"span {i}: the recording has one channel")


async def _header(services: Services, rec: catalog.Recording, upto: int) -> bytes:
    async with access.open_reader(services, rec) as reader:
        return b"".join([bytes(p) async for p in reader.iter_range(0, upto - 1)])


def redaction_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "recording_id": row["recording_id"],
            "created_at": rfc3339(row["created_at"]), "actor": row["actor"],
            "reason": row["reason"], "fill": row["fill"], "spans": row["spans"],
            "under_legal_hold": row["under_hold"], "sha256": row["sha256"],
            "receipt": row["receipt"]}


@dataclass(frozen=True)
class Replay:
    """A redaction the ledger holds, applied again to a catalog restored from before it."""
    redaction_id: str
    redacted_at: str
    sha256: str


def _unsupported(detail: str) -> Unprocessable:
    return Unprocessable("redaction_unsupported_format", detail)


async def _load(services: Services, recording_id: str,
                ) -> tuple[catalog.Recording, dict[str, Any]]:
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
        committed = await catalog.commitment_of(conn, recording_id)
    if rec is None:
        raise NotFound()
    if rec.state != "active" or rec.blob_name is None:
        raise Gone("purged", "the recording has been purged")
    if committed is None:
        raise _unsupported("only WAV PCM 8/16-bit, mu-law and A-law recordings, mono or "
                           "stereo, can be redacted")
    return rec, committed


async def redact(services: Services, actor: Actor, origin: Origin, recording_id: str,
                 body: Any) -> dict[str, Any]:
    spans, reason, fill = parse_request(body)
    rec, committed = await _load(services, recording_id)
    held = [case for _, case in rec.legal_holds]
    if held and reason != "pci":
        await auditing.record(services, auditing.event(
            actor, origin, "redaction", "denied", recording_id=recording_id,
            reason="legal_hold", detail={"reason": reason}))
        raise Refused("legal_hold", f"under legal hold: {', '.join(held)}; only card data "
                                    f"(reason pci) may be redacted under a hold", None)
    row = await _apply(services, actor, origin, rec, committed, spans, reason, fill, held)
    return redaction_json(row)


async def _apply(services: Services, actor: Actor, origin: Origin, rec: catalog.Recording,
                 committed: Mapping[str, Any], spans: list[Span], reason: str, fill: str,
                 held: list[str], replay: Replay | None = None) -> dict[str, Any]:
    offset = committed["audio_offset"]
    header = await _header(services, rec, offset)
    layout = layout_of(header, offset)
    if layout is None:  # committed formats are the ones laid out: a damaged header
        raise _unsupported("the WAV header is not one a redaction can rewrite")
    audio_end = audio_end_of(header, offset, rec.size_bytes)
    _check_spans(spans, layout, audio_end)
    spans = merged_spans(spans)
    chunk_bytes = committed["chunk_bytes"]
    async with services.database.read() as conn:
        earlier = await redaction_store.of_recording(conn, rec.id)
    # Each redaction is proven against the upload's commitment: the pieces changed so far
    # (by this one and the ones before) and the leaves as committed at upload.
    before_changed = {i for r in earlier for i in r["changed_pieces"]}
    all_spans = merged_spans([*(Span(s["start_ms"], s["end_ms"], s["channel"])
                                for r in earlier for s in r["spans"]), *spans])
    changed = sorted(before_changed | {
        i for start, end in byte_ranges(layout, spans, audio_end)
        for i in range(commitment.piece_of(start, offset, chunk_bytes),
                       commitment.piece_of(end - 1, offset, chunk_bytes) + 1)})

    assert rec.wrapped_dek is not None and rec.key_version is not None
    old_dek = await services.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rec.id)
    salt_key = commitment.open_salt_key(old_dek, rec.id, committed["sealed_salt_key"])
    original = commitment.Committer(salt_key, keep=lambda _i: True)
    dek = new_dek()
    key_version, wrapped = services.keyring.wrap(dek, rec.id)
    blob_name = new_blob_name()
    new_hash, peaks = hashlib.sha256(), waveform.PeakMeter()
    filler = Filler(layout, spans, fill, audio_end)
    writer = EncryptingWriter(await services.blobs.open_writer(blob_name, rec.purge_at), dek,
                              rec.id)

    async def write(data: bytes) -> None:
        new_hash.update(data)
        await peaks.feed_async(data)
        await writer.write(data)

    # Step 1: the rewrite.
    try:
        async with access.open_reader(services, rec) as reader:
            async for piece in reader.iter_range(0, rec.size_bytes - 1):
                original.feed(piece)
                await write(filler.feed(piece))
        await write(filler.finish())
        done = original.finish()
        now_leaves = b"".join(original.leaves[i] for i in range(len(original.leaves)))
        leaves = earlier[0]["original_leaves"] if earlier else now_leaves
        if done is None or not _as_committed(done, now_leaves, leaves, before_changed,
                                             committed):
            raise Unprocessable("commitment_mismatch", "the stored audio is not what was "
                                                       "committed to at upload")
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    levels = peaks.levels()
    redaction_id = replay.redaction_id if replay else "red_" + secrets.token_urlsafe(12)
    sha256 = new_hash.hexdigest()
    shown_spans = [s.json() for s in spans]
    if replay is None:
        # Before the swap commits: a catalog restored from an older backup redacts it
        # again (restore.py), so no redaction is ever undone by a restore.
        await asyncio.to_thread(erasure_ledger.append, services.config.erasure_ledger_path, [{
            "action": "redaction", "recording_id": rec.id, "redaction_id": redaction_id,
            "redacted_at": rfc3339(services.clock()), "spans": shown_spans, "fill": fill,
            "reason": reason, "previous_sha256": rec.sha256, "sha256": sha256}])
    row = await _swap(services, actor, origin, rec, _Rewritten(
        redaction_id, shown_spans, [s.json() for s in all_spans], reason, fill, held,
        changed, leaves,
        {"blob_name": blob_name, "wrapped_dek": wrapped, "key_version": key_version,
         "sha256": sha256, "audio_check": waveform.silence_check(peaks.channel_peaks())},
        waveform.seal(dek, rec.id, levels, peaks.seconds_per_level) if levels else None,
        commitment.seal_salt_key(dek, rec.id, salt_key)), committed, replay)
    await _delete_old_blob(services, rec)
    await services.database.truncate_wal()
    if replay is None:
        await mirror_ledger(services)
    return row


def _as_committed(done: commitment.Commitment, now: bytes, committed_leaves: bytes,
                  changed: set[int], committed: Mapping[str, Any]) -> bool:
    """Whether the audio read is what was committed at upload, but the pieces earlier
    redactions changed: by the root when none did, else piece by piece."""
    if not changed:
        return done.root.hex() == committed["root"] and now == committed_leaves
    if len(now) != len(committed_leaves):
        return False
    return all(now[i * 32:(i + 1) * 32] == committed_leaves[i * 32:(i + 1) * 32]
               for i in range(len(now) // 32) if i not in changed)


@dataclass(frozen=True)
class _Rewritten:
    redaction_id: str
    spans: list[dict[str, int | None]]
    all_spans: list[dict[str, int | None]]  # this one's and the earlier ones', merged
    reason: str
    fill: str
    held: list[str]
    changed: list[int]
    leaves: bytes  # every piece's leaf as committed, 32 bytes each
    recording: dict[str, Any]  # the recording row's new values
    sealed_waveform: bytes | None
    sealed_salt_key: bytes


async def _swap(services: Services, actor: Actor, origin: Origin, rec: catalog.Recording,
                new: _Rewritten, committed: Mapping[str, Any],
                replay: Replay | None) -> dict[str, Any]:
    """Step 2, one transaction: the recording now is the rewritten audio."""
    assert rec.blob_name is not None
    now = services.clock()
    sha256 = new.recording["sha256"]
    async with services.database.write() as conn:
        swapped = await redaction_store.swap_audio(conn, rec.id, rec.blob_name, new.recording,
                                                   new.sealed_waveform, new.sealed_salt_key)
        if swapped:
            detail: dict[str, Any] = {
                "redaction_id": new.redaction_id, "reason": new.reason, "fill": new.fill,
                "spans": new.spans, "under_legal_hold": bool(new.held),
                "original_root": committed["root"], "sha256": sha256}
            if replay is not None:
                detail |= {"redacted_at": replay.redacted_at,
                           "same_audio": replay.sha256 == sha256}
            entry = await auditing.append(services, conn, auditing.event(
                actor, origin, "redaction" if replay is None else "redaction_replayed",
                "allowed", recording_id=rec.id, detail=detail))
            body = {
                "type": REDACTION_RECEIPT_TYPE, "recording_id": rec.id,
                "redaction_id": new.redaction_id, "original_root": committed["root"],
                "commitment": {"chunks": committed["chunks"],
                               "audio_offset": committed["audio_offset"],
                               "chunk_bytes": committed["chunk_bytes"],
                               "chunk_seconds": commitment.CHUNK_SECONDS},
                "spans": new.spans, "all_spans": new.all_spans, "fill": new.fill,
                "reason": new.reason, "previous_sha256": rec.sha256, "audio_sha256": sha256,
                "actor": actor.name, "redacted_at": rfc3339(now),
                "audit_seq": entry["seq"], "under_legal_hold": bool(new.held),
                "legal_holds": new.held}
            if replay is not None:
                body["replay_of"] = replay.redacted_at
            row = {"id": new.redaction_id, "recording_id": rec.id, "created_at": now,
                   "actor": actor.name, "reason": new.reason, "fill": new.fill,
                   "spans": new.spans, "under_hold": bool(new.held),
                   "original_root": committed["root"], "previous_sha256": rec.sha256,
                   "sha256": sha256, "changed_pieces": new.changed,
                   "original_leaves": new.leaves, "audit_seq": entry["seq"],
                   "receipt": signed(services.signing_key, services.config.audit_origin,
                                     body)}
            await redaction_store.insert_redaction(conn, row)
    if not swapped:
        await ingest.discard(services, new.recording["blob_name"])
        raise Refused("recording_changed", "the recording changed while it was rewritten "
                                           "(another redaction, or a purge): try again", None)
    if new.held:
        async with services.database.read() as conn:
            now_rec = await catalog.get_recording(conn, rec.id)
        if now_rec is not None:
            await worm.hold(services, now_rec, True)
    return row


async def replay(services: Services, actor: Actor, entries: list[dict[str, Any]],
                 ) -> list[dict[str, Any]]:
    """Redacts again, in the ledger's order, what the ledger says was redacted and a
    restored catalog does not know of; what was done to each."""
    done = []
    for entry in entries:
        try:
            rec, committed = await _load(services, str(entry["recording_id"]))
        except (NotFound, Gone, Unprocessable):
            continue  # purged since (its erasure replayed), or never here
        outcome = {"recording_id": rec.id, "redaction_id": entry["redaction_id"]}
        async with services.database.read() as conn:
            if await redaction_store.get(conn, rec.id, str(entry["redaction_id"])):
                continue  # the backup was taken after it
        # Applied whatever the audio now is: a line whose redaction did not commit (it
        # lost a race and was refused) redacts what was asked all the same; nothing
        # redacted ever comes back.
        spans = [Span(s["start_ms"], s["end_ms"], s.get("channel")) for s in entry["spans"]]
        row = await _apply(services, actor, SYSTEM_ORIGIN, rec, committed, spans,
                           str(entry["reason"]), str(entry["fill"]),
                           [case for _, case in rec.legal_holds],
                           Replay(str(entry["redaction_id"]), str(entry["redacted_at"]),
                                  str(entry["sha256"])))
        done.append({**outcome, "outcome": "redacted" if row["sha256"] == entry["sha256"]
                     else "redacted_differently"})
    return done


async def _delete_old_blob(services: Services, rec: catalog.Recording) -> None:
    """Step 3. Its key is destroyed already: whatever happens here, it is noise."""
    assert rec.blob_name is not None
    try:
        await services.blobs.delete(rec.blob_name)
    except BlobLockedError as exc:
        async with services.database.write() as conn:
            await retention_store.keep_blobs(conn, {rec.blob_name: (rec.id, exc.until)})
    except (StorageError, OSError) as exc:
        log.error("deleting a redacted recording's old blob failed; the orphan sweep will",
                  extra={"recording_id": rec.id, "error": type(exc).__name__})


async def list_redactions(services: Services, actor: Actor, origin: Origin,
                          recording_id: str) -> list[dict[str, Any]]:
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
        rows = await redaction_store.of_recording(conn, recording_id)
    if rec is None:
        raise NotFound()
    await auditing.record(services, auditing.event(
        actor, origin, "redactions_read", "allowed", recording_id=recording_id,
        detail={"count": len(rows)}))
    return [redaction_json(r) for r in rows]


async def proof(services: Services, actor: Actor, origin: Origin, recording_id: str,
                redaction_id: str) -> dict[str, Any]:
    """What ``verify-redaction`` needs besides the audio and the public key: the salts of
    the pieces the redaction left as they were, the committed leaves of those it changed,
    the upload's audit entry that holds the root, and that entry's inclusion in a signed
    checkpoint of the log."""
    async with services.database.read() as conn:
        rec = await catalog.get_recording(conn, recording_id)
        row = await redaction_store.get(conn, recording_id, redaction_id)
        committed = await catalog.commitment_of(conn, recording_id)
    if rec is None or row is None:
        raise NotFound()
    if rec.state != "active" or committed is None or rec.wrapped_dek is None \
            or rec.key_version is None:
        raise Gone("purged", "the recording has been purged: its salts went with its key")
    dek = await services.keyring.unwrap_fresh(rec.wrapped_dek, rec.key_version, rec.id)
    salt_key = commitment.open_salt_key(dek, rec.id, committed["sealed_salt_key"])
    upload, inclusion = await _upload_inclusion(services, committed)
    changed = set(row["changed_pieces"])
    leaves = row["original_leaves"]
    await auditing.record(services, auditing.event(
        actor, origin, "redaction_proof", "allowed", recording_id=recording_id,
        detail={"redaction_id": redaction_id}))
    return {
        "recording_id": recording_id, "redaction_id": redaction_id,
        "original_root": row["original_root"], "chunks": committed["chunks"],
        "audio_offset": committed["audio_offset"], "chunk_bytes": committed["chunk_bytes"],
        "changed_pieces": row["changed_pieces"],
        "leaves": [leaves[i:i + 32].hex() for i in range(0, len(leaves), 32)],
        "salts": {str(i): commitment.chunk_salt(salt_key, i).hex()
                  for i in range(committed["chunks"]) if i not in changed},
        "upload_entry": upload,
        "inclusion": inclusion,
        "receipt": row["receipt"],
    }


async def _upload_inclusion(services: Services, committed: Mapping[str, Any],
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upload entry and the path from it to the first signed checkpoint that holds it;
    when none does yet (the entry is seconds old), a checkpoint is signed now, as the
    scheduler would within ``checkpoint_max_delay_seconds``."""
    seq = int(committed["log_seq"])
    async with services.database.read() as conn:
        checkpoint = await audit_log.first_checkpoint_covering(conn, seq)
    if checkpoint is None:
        checkpoint = await jobs.checkpoint(services)
    frontier = [bytes.fromhex(node) for node in committed["log_frontier"].split(",") if node]
    entry, path = await audit_log.prove_inclusion(services.database, services.tiles, seq,
                                                  frontier, checkpoint)
    return entry, {"leaf_index": seq - 1, "tree_size": checkpoint.size,
                   "checkpoint": checkpoint.note, "path": [node.hex() for node in path]}
