"""Upload: stream in, encrypt as it arrives, check, make durable, then acknowledge.

Order: the blob is written encrypted to a temporary object; only when the size limit,
the container check and the checksum pass is it committed (fsync + rename); then the
catalog row, its purposes and the audit entry commit in one transaction. A crash before
that transaction leaves at most a temporary or orphan blob, both removed at next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recordings_service import auditing, calls, commitment, policy, waveform, worm
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.config import Purpose
from recordings_service.errors import BadRequest, Conflict, PayloadTooLarge, Unprocessable
from recordings_service.fields import optional_text, refuse_dot_segment, required_text
from recordings_service.media import MediaInfo, MediaSniffer
from recordings_service.services import Services
from recordings_service.times import parse_time
from storage import catalog, retention_store
from storage.blobstore.base import new_blob_name
from storage.database import Conn
from storage.encrypted_blob import EncryptingWriter
from storage.errors import BlobLockedError, DuplicateCallIdError, StorageError
from storage.keyring import new_dek
from storage.limits import IDENTIFIER, PHONE_NUMBER

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Each text field with the limit of the column it is stored in.
TEXT_FIELDS = {"agent_id": IDENTIFIER, "customer_id": IDENTIFIER,
               "phone_number": PHONE_NUMBER, "queue": IDENTIFIER}
# Those a route names in its path (PUT /v1/calls/{call_id}, /v1/subjects/{customer_id}).
PATH_IDENTIFIERS = ("call_id", "customer_id")


@dataclass(frozen=True)
class UploadMetadata:
    call_id: str
    started_at: datetime
    purposes: tuple[str, ...]
    ended_at: datetime | None = None
    direction: str | None = None
    agent_id: str | None = None
    customer_id: str | None = None
    phone_number: str | None = None
    queue: str | None = None
    sha256: str | None = None
    leg: str = "mixed"


# Which side of the call a recording holds: PBXs write each side to its own file
# (MixMonitor r()/t(), FreeSWITCH RECORD_STEREO off, baresip's -enc/-dec), or both mixed.
LEGS = ("caller", "callee", "mixed")


def _invalid(detail: str) -> BadRequest:
    return BadRequest("invalid_metadata", detail)


def parse_metadata(raw: Mapping[str, Any], configured: Mapping[str, Purpose]) -> UploadMetadata:
    """Validates upload metadata; error details name the field, never echo its value."""
    call_id = required_text(raw.get("call_id"), "call_id", IDENTIFIER, "invalid_metadata")
    if "started_at" not in raw:
        raise _invalid("started_at is required")
    started_at = parse_time(raw["started_at"], "started_at")
    ended_at = None if raw.get("ended_at") is None else parse_time(raw["ended_at"], "ended_at")
    if ended_at is not None and ended_at < started_at:
        raise _invalid("ended_at is before started_at")
    direction = raw.get("direction")
    if direction is not None and direction not in ("inbound", "outbound"):
        raise _invalid("direction must be inbound or outbound")
    texts = {name: optional_text(raw.get(name), name, limit, "invalid_metadata")
             for name, limit in TEXT_FIELDS.items()}
    for name in PATH_IDENTIFIERS:
        refuse_dot_segment(call_id if name == "call_id" else texts[name], name,
                           "invalid_metadata")
    purposes = raw.get("purposes")
    if (not isinstance(purposes, list) or not purposes
            or not all(isinstance(p, str) for p in purposes)):
        raise _invalid("purposes must be a non-empty list of purpose names")
    unknown = sorted(set(purposes) - set(configured))
    if unknown:
        raise BadRequest("unknown_purpose",
                         f"not configured purposes: {', '.join(unknown)}; "
                         f"configured: {', '.join(sorted(configured))}")
    try:
        # Every expiry must be a representable time before anything is written.
        for name in purposes:
            policy.purpose_state(configured[name], started_at)
    except (ValueError, OverflowError):
        raise _invalid("started_at is too far in the future for its retention periods") \
            from None
    leg = raw.get("leg", "mixed")
    if leg not in LEGS:
        raise _invalid(f"leg must be one of {', '.join(LEGS)}")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _HEX64.fullmatch(sha)):
        raise _invalid("sha256 must be 64 hexadecimal digits")
    unknown_fields = sorted(set(raw) - {"call_id", "started_at", "ended_at", "direction",
                                        "purposes", "sha256", "leg", *TEXT_FIELDS})
    if unknown_fields:
        raise _invalid(f"unknown metadata fields: {', '.join(unknown_fields)}")
    return UploadMetadata(
        call_id=call_id, started_at=started_at, ended_at=ended_at, direction=direction,
        purposes=tuple(dict.fromkeys(purposes)), sha256=sha.lower() if sha else None,
        leg=leg, **texts,
    )


def new_recording_id() -> str:
    return "rec_" + secrets.token_urlsafe(16)


@dataclass(frozen=True)
class UploadResult:
    recording: catalog.Recording
    created: bool


class _Measure:
    """Counts, hashes and sniffs the plaintext as it streams past."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()
        self.sniffer = MediaSniffer()
        self.peaks = waveform.PeakMeter()
        self.salt_key = commitment.new_salt_key()
        self.committer = commitment.Committer(self.salt_key)

    async def feed(self, chunk: bytes, levels: bool = True) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge("too_large",
                                  f"recordings are limited to {self.limit} bytes")
        self.hash.update(chunk)
        self.sniffer.feed(chunk)
        if levels:
            self.committer.feed(chunk)
            await self.peaks.feed_async(chunk)

    async def finish(self, expected_sha256: str | None) -> tuple[str, MediaInfo]:
        # Off the event loop: parsing is bounded (media.py) but not free, and other
        # requests' audit commits and streams must not wait behind it.
        media = await asyncio.to_thread(self.sniffer.finish)
        digest = self.hash.hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            raise Unprocessable("checksum_mismatch",
                                "the audio's SHA-256 differs from the sha256 given")
        return digest, media


def _sealed_waveform(peaks: waveform.PeakMeter, dek: bytes, recording_id: str) -> bytes | None:
    levels = peaks.levels()
    if not levels:
        return None
    return waveform.seal(dek, recording_id, levels, peaks.seconds_per_level)


def _same_or_conflict(existing: catalog.Recording, digest: str) -> UploadResult:
    if existing.sha256 == digest:
        return UploadResult(existing, created=False)
    raise Conflict("duplicate_call_id",
                   "this call_id (and leg) is stored already with different audio")


async def _existing(services: Services, meta: UploadMetadata) -> catalog.Recording | None:
    async with services.database.read() as conn:
        return await catalog.get_by_call_leg(conn, meta.call_id, meta.leg)


async def discard(services: Services, blob_name: str) -> None:
    """Deletes a blob no row will name (an upload or a redaction that did not commit).
    A write-once store keeps it until its lock lapses, a store that fails now keeps it
    too: noise either way (its data key was never stored), deleted by the orphan sweep.
    Never raises, so the error that made the blob unwanted is the one the caller sees."""
    try:
        await services.blobs.delete(blob_name)
    except BlobLockedError:
        log.info("a discarded blob is kept by the store's lock until it lapses")
    except (StorageError, OSError):
        log.warning("a discarded blob could not be deleted now; the orphan sweep will")


async def upload(
    services: Services, actor: Actor, origin: Origin, meta: UploadMetadata,
    body: AsyncIterator[bytes],
) -> UploadResult:
    measure = _Measure(services.config.max_upload_bytes)
    existing = await _existing(services, meta)
    if existing is not None:
        # Idempotent retry: read and hash the body, store nothing.
        async for chunk in body:
            await measure.feed(chunk, levels=False)
        digest, _ = await measure.finish(meta.sha256)
        return _same_or_conflict(existing, digest)

    states = [policy.purpose_state(services.config.purposes[p], meta.started_at)
              for p in meta.purposes]
    recording_id = new_recording_id()
    dek = new_dek()
    await services.keyring.refresh_if_older(services.config.key_refresh_interval_seconds)
    key_version, wrapped = services.keyring.wrap(dek, recording_id)
    blob_name = new_blob_name()
    # Written under its retention from the first byte when the store keeps blobs write-once.
    purge_at = policy.purge_at(states, services.clock())
    writer = EncryptingWriter(await services.blobs.open_writer(blob_name, purge_at), dek,
                              recording_id)
    try:
        async for chunk in body:
            await measure.feed(chunk)
            await writer.write(chunk)
        digest, media = await measure.finish(meta.sha256)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise

    try:
        now = services.clock()
        # Before the silence check: the waveform's last levels take in the audio's tail.
        sealed = _sealed_waveform(measure.peaks, dek, recording_id)
        values: dict[str, Any] = {
            "id": recording_id, "call_id": meta.call_id, "leg": meta.leg,
            "agent_id": meta.agent_id,
            "customer_id": meta.customer_id, "phone_number": meta.phone_number,
            "queue": meta.queue, "direction": meta.direction, "started_at": meta.started_at,
            "ended_at": meta.ended_at, "content_type": media.content_type,
            "size_bytes": measure.size, "duration_seconds": media.duration_seconds,
            "sha256": digest, "blob_name": blob_name, "wrapped_dek": wrapped,
            "key_version": key_version, "purge_at": purge_at,
            "state": "active", "created_at": now,
            "subject_ref": services.subject_ref(meta.customer_id) if meta.customer_id else None,
            "audio_check": waveform.silence_check(measure.peaks.channel_peaks()),
        }
        purposes = [catalog.PurposeRow(s.purpose, s.legal_basis, s.expires_at) for s in states]
        committed = measure.committer.finish()
        detail: dict[str, Any] = {
            "size_bytes": measure.size, "content_type": media.content_type,
            "purposes": list(meta.purposes), "leg": meta.leg}
        if committed is not None:
            # In the signed log: what a later redaction proves every other piece against.
            detail["commitment"] = committed.json()

        async def insert_row(conn: Conn) -> catalog.Recording | None:
            inserted = await catalog.insert_recording(conn, values, purposes, sealed)
            await calls.recording_arrived(services, conn, meta.call_id)
            held = []
            if meta.customer_id is not None:
                # A hold on the data subject covers recordings uploaded while it stands.
                held = await retention_store.active_customer_holds(conn, meta.customer_id)
                for hold_id in held:
                    await retention_store.link_hold(conn, hold_id, [recording_id])
                if held:
                    await worm.hold(services, inserted, True)
            entry, log_before = await auditing.append_placed(services, conn, auditing.event(
                actor, origin, "upload", "allowed", recording_id=recording_id,
                detail=detail))
            if committed is not None:
                await catalog.insert_commitment(conn, recording_id, {
                    "root": committed.root.hex(), "chunks": committed.chunks,
                    "audio_offset": committed.audio_offset,
                    "chunk_bytes": committed.chunk_bytes,
                    "sealed_salt_key": commitment.seal_salt_key(dek, recording_id,
                                                                measure.salt_key),
                    "log_seq": entry["seq"],
                    "log_frontier": ",".join(node.hex() for node in log_before)})
            # Read back only when a hold changed it: three reads fewer in a transaction that
            # concurrent uploads wait on.
            return await catalog.get_recording(conn, recording_id) if held else inserted

        # Concurrent uploads share a transaction and its fsync. Shielded: a client that
        # goes away mid-commit must not leave us unsure whether a committed row's blob may
        # be deleted. If we are cancelled here, the blob stays; should the row not have
        # committed, the orphan sweep removes it at next start.
        stored = await asyncio.shield(services.group_commit.run(insert_row))
    except DuplicateCallIdError:
        # A concurrent upload of the same call won the race; answer as a retry would.
        await discard(services, blob_name)
        existing = await _existing(services, meta)
        if existing is None:
            raise
        return _same_or_conflict(existing, digest)
    except asyncio.CancelledError:
        raise
    except Exception:
        # Whatever failed after the blob was committed (building the row, the insert, the
        # audit entry), nothing refers to the blob: remove it now, not at the next start.
        await discard(services, blob_name)
        raise
    assert stored is not None
    services.metrics.upload_bytes.inc(measure.size)
    return UploadResult(stored, created=True)
