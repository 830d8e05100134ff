"""``recordings-service restore SRC --into DIR``: verify a backup, restore it, and erase
again what was erased after it.

1. The snapshot's files (catalog, checkpoint mirror, every blob) are checked against the
   manifest's sizes and sums before anything is written; DIR must be new or empty.
2. The files are copied into DIR; the service opens them with the configured key custody
   (the root key is never in a backup) and the manifest's signature is checked with the
   restored audit signing key.
3. Every erasure in the ledger (``--erasures``, else the backup's own copy) whose
   recording the restored catalog still holds is done again: data key destroyed, blob
   deleted, tombstone with the original signed receipt. This runs before the restored
   service answers a single request (it is part of this command).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

from recordings_service import auditing, jobs
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.backup import (
    CATALOG,
    MANIFEST,
    SIGNATURE,
    blob_relpath,
    copy_durably,
    manifest_bytes,
    sha256_file,
    taken_at,
)
from recordings_service.clock import Clock
from recordings_service.config import Config
from recordings_service.errors import BackupError
from recordings_service.services import Services, open_services
from storage import catalog, erasure_ledger, retention_store
from storage.blobstore.base import BlobStore
from storage.durable import fsync_path
from storage.errors import StorageError

RESTORE_ACTOR = Actor("system:restore", frozenset())


@dataclass
class RestoreReport:
    snapshot: str
    taken_at: str
    recordings: int = 0
    blobs: int = 0
    replayed: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit_ok: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot, "taken_at": self.taken_at,
                "blobs": self.blobs, "erasures_replayed": self.replayed,
                "warnings": self.warnings, "audit_verified": self.audit_ok}


def choose_snapshot(src: Path, name: str | None) -> Path:
    snapshots = sorted(p for p in (src / "snapshots").glob("*") if (p / MANIFEST).exists())
    if name is not None:
        chosen = [p for p in snapshots if p.name == name]
        if not chosen:
            raise BackupError(f"{src} has no snapshot {name!r}")
        return chosen[0]
    if not snapshots:
        raise BackupError(f"{src} holds no backup snapshot (no snapshots/*/{MANIFEST})")
    return snapshots[-1]


def _check_file(path: Path, size: int, digest: str, what: str) -> None:
    if not path.is_file():
        raise BackupError(f"{what} is missing from the backup: {path}")
    if path.stat().st_size != size or sha256_file(path) != digest:
        raise BackupError(f"{what} does not match the manifest (damaged): {path}")


def verify_files(src: Path, folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names, by size and SHA-256 (blocking)."""
    entry = manifest["catalog"]
    if entry["kind"] == "sqlite":
        _check_file(folder / entry["file"], entry["size"], entry["sha256"], "the catalog")
    mirror = manifest.get("checkpoint_mirror")
    if mirror:
        _check_file(folder / mirror["file"], mirror["size"], mirror["sha256"],
                    "the checkpoint mirror")
    for blob in manifest["blobs"]:
        _check_file(src / blob_relpath(blob["name"]), blob["size"], blob["sha256"],
                    f"blob {blob['name']}")


async def _put_blob(store: BlobStore, path: Path, name: str) -> None:
    """Writes a backed-up blob into the store (a directory or a bucket) under its name."""
    writer = await store.open_writer(name)
    try:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, 8 * 1024 * 1024):
                await writer.write(chunk)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise


def read_ledger(paths: list[Path]) -> list[dict[str, Any]]:
    """Erasure entries of every given ledger, each recording once."""
    entries: dict[str, dict[str, Any]] = {}
    for path in paths:
        for entry in erasure_ledger.read(path):
            rec_id = entry.get("recording_id")
            if isinstance(rec_id, str) and rec_id not in entries:
                entries[rec_id] = entry
    return list(entries.values())


async def replay_erasures(services: Services, entries: list[dict[str, Any]],
                          ) -> list[dict[str, Any]]:
    """Erases again the recordings the ledger says were erased and the catalog still
    holds; returns what was done to each."""
    done = []
    for entry in entries:
        rec_id = entry["recording_id"]
        async with services.database.read() as conn:
            rec = await catalog.get_recording(conn, rec_id)
        if rec is None or rec.state == "purged":
            continue
        reason = str(entry.get("reason") or "erasure replayed from the ledger")
        async with services.database.write() as conn:
            await retention_store.mark_purging_and_destroy_keys(conn, [rec_id], reason)
        if rec.blob_name:
            await services.blobs.delete(rec.blob_name)
        purged_at = datetime.fromisoformat(str(entry["purged_at"]).replace("Z", "+00:00"))
        async with services.database.write() as conn:
            if await retention_store.lock_shredded(conn, [rec_id]):
                await retention_store.tombstone_many(
                    conn, {rec_id: json.dumps(entry["deletion_receipt"])}, purged_at)
                await auditing.append_many(services, conn, [auditing.event(
                    RESTORE_ACTOR, SYSTEM_ORIGIN, "erasure_replayed", "allowed",
                    recording_id=rec_id, reason=reason,
                    detail={"original_action": entry.get("action"),
                            "purged_at": entry["purged_at"], "data_key_destroyed": True,
                            "blob_deleted": True})])
        done.append({"recording_id": rec_id, "purged_at": entry["purged_at"],
                     "reason": reason})
    return done


def _ledger_warning(paths: list[Path], manifest: dict[str, Any]) -> str | None:
    """A loud warning when no ledger given was written after the snapshot was taken."""
    snapshot_time = taken_at(manifest)
    newest = max((datetime.fromtimestamp(p.stat().st_mtime).astimezone()
                  for p in paths if p.exists()), default=None)
    if newest is None:
        return ("WARNING: no erasure ledger was found or given. Recordings erased after "
                f"this backup ({manifest['taken_at']}) would come back. Give the newest "
                "ledger (the live data directory's or a later backup's) with --erasures")
    if newest < snapshot_time:
        return ("WARNING: the erasure ledger is older than this backup "
                f"({manifest['taken_at']}): erasures made since may be missing from it. "
                "Give the newest ledger with --erasures")
    return None


async def restore(config: Config, clock: Clock, src: Path, snapshot: str | None,
                  erasures: list[Path],
                  progress: Callable[[str], None] = lambda _: None) -> RestoreReport:
    into = config.data_dir
    root_files = {config.root_key_path.name, config.root_key_path.name + ".lock"}
    # A new directory may already hold the root key (restored with ``keys import``).
    kept = {p.name for p in into.iterdir()} if into.exists() else set()
    if kept - root_files:
        raise BackupError(f"{into} is not empty: restore only into a new directory")
    folder = choose_snapshot(src, snapshot)
    try:
        body = (folder / MANIFEST).read_bytes()
        manifest = json.loads(body)
        signature = base64.b64decode((folder / SIGNATURE).read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise BackupError(f"the manifest in {folder} cannot be read ({type(exc).__name__})"
                          ) from None
    if manifest.get("format") != "recordings-backup/1" or manifest_bytes(manifest) != body:
        raise BackupError(f"{folder / MANIFEST} is not a backup manifest of this service")
    on_sqlite = manifest["catalog"]["kind"] == "sqlite"
    if on_sqlite == bool(config.database_url):
        raise BackupError("the backup's catalog is on " + manifest["catalog"]["kind"] +
                          " but the configuration says otherwise (RECORDINGS_DATABASE_URL)")
    progress(f"verifying snapshot {folder.name}")
    await asyncio.to_thread(verify_files, src, folder, manifest)

    report = RestoreReport(folder.name, manifest["taken_at"])
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        progress("copying")
        if on_sqlite:
            await asyncio.to_thread(copy_durably, folder / CATALOG, into / CATALOG)
        mirror = manifest.get("checkpoint_mirror")
        if mirror:
            await asyncio.to_thread(copy_durably, folder / mirror["file"],
                                    config.checkpoint_path)
        await asyncio.to_thread(fsync_path, into)

        ledgers = erasures or [src / erasure_ledger.FILE_NAME]
        warning = _ledger_warning(ledgers, manifest)
        if warning:
            report.warnings.append(warning)
        entries = read_ledger([p for p in ledgers if p.exists()])
        async with open_services(config, clock) as services:
            try:
                services.signing_key.public_key().verify(signature, body)
            except InvalidSignature:
                raise BackupError("the manifest's signature does not verify with the "
                                  "restored audit key: the backup was altered") from None
            progress(f"restoring {len(manifest['blobs'])} blobs")
            for blob in manifest["blobs"]:
                await _put_blob(services.blobs, src / blob_relpath(blob["name"]),
                                blob["name"])
            report.blobs = len(manifest["blobs"])
            progress(f"replaying {len(entries)} ledger entries")
            report.replayed = await replay_erasures(services, entries)
            # The restored directory's own ledger holds everything erased so far.
            lines = {json.dumps(e, sort_keys=True): e
                     for p in ledgers if p.exists() for e in erasure_ledger.read(p)}
            await asyncio.to_thread(erasure_ledger.append, config.erasure_ledger_path,
                                    list(lines.values()))
            await auditing.record(services, auditing.event(
                RESTORE_ACTOR, SYSTEM_ORIGIN, "restore", "allowed",
                detail={"snapshot": folder.name, "taken_at": manifest["taken_at"],
                        "erasures_replayed": len(report.replayed)}))
            await jobs.checkpoint(services)
            report.audit_ok = (await jobs.verify_audit(services)).ok
    except (BackupError, StorageError, OSError):
        # Nothing half-restored is left behind; a root key put there beforehand stays.
        for path in into.iterdir():
            if path.name not in kept:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        if not kept:
            into.rmdir()
        raise
    return report
