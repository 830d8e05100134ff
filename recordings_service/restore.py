"""``recordings-service restore SRC --into DIR``: verify a backup, restore it, and erase
again what was erased after it.

1. The manifest's signature is checked first, with the audit signing key of the backed-up
   catalog (read in place, unsealed with the configured key custody: the root key is never
   in a backup); any alteration of the manifest stops here, naming it. Then the snapshot's
   files (catalog, checkpoint mirror, every blob) are checked against the manifest's sizes
   and sums before anything is written; DIR must be new or empty.
2. The files are copied into DIR and the service opens them.
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
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from recordings_service import auditing, jobs, redaction
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.backup import (
    CATALOG,
    FORMATS,
    MANIFEST,
    SIGNATURE,
    TILES,
    blob_relpath,
    chain_blob_list,
    copy_durably,
    manifest_bytes,
    readable_blobs,
    sha256_file,
    snapshot_chain,
    taken_at,
)
from recordings_service.clock import Clock
from recordings_service.config import Config
from recordings_service.custody import open_root_key
from recordings_service.errors import BackupError
from recordings_service.services import Services, open_services
from storage import audit_archive, catalog, erasure_ledger, key_store, retention_store, tlog_tiles
from storage.database import Database
from storage.durable import fsync_path
from storage.errors import ArchiveDamagedError, CustodyError, StorageError
from storage.key_material import SIGNING_KEY, secret_aad
from storage.tilestore.filesystem import FilesystemTileStore

RESTORE_ACTOR = Actor("system:restore", frozenset())


@dataclass
class RestoreReport:
    snapshot: str
    taken_at: str
    recordings: int = 0
    blobs: int = 0
    replayed: list[dict[str, Any]] = field(default_factory=list)
    redactions_replayed: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audit_ok: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot, "taken_at": self.taken_at,
                "blobs": self.blobs, "erasures_replayed": self.replayed,
                "redactions_replayed": self.redactions_replayed,
                "warnings": self.warnings, "audit_verified": self.audit_ok}


def _sealed_signing_key_in(catalog_file: Path) -> tuple[int, bytes] | None:
    """The sealed audit key in a backed-up SQLite catalog, read in place without changing
    it (read-only and immutable: no journal, no WAL replay)."""
    try:
        with closing(sqlite3.connect(catalog_file.as_uri() + "?mode=ro&immutable=1",
                                     uri=True)) as conn:
            row = conn.execute("SELECT root_generation, sealed_value FROM key_secrets "
                               "WHERE name = ?", (SIGNING_KEY,)).fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"the backed-up catalog {catalog_file} cannot be read "
                          f"({type(exc).__name__})") from None
    return None if row is None else (int(row[0]), bytes(row[1]))


async def _signing_key(config: Config, folder: Path, on_sqlite: bool) -> Ed25519PublicKey:
    """The public half of the audit key that signed the backup's manifest: from the
    snapshot's catalog (SQLite), or from the configured PostgreSQL catalog, which an
    operator restores with PostgreSQL's own tools before this command."""
    if on_sqlite:
        sealed = await asyncio.to_thread(_sealed_signing_key_in, folder / CATALOG)
    else:
        database = Database(config.database_url.reveal())
        try:
            async with database.read() as conn:
                row = (await key_store.secret_rows(conn)).get(SIGNING_KEY)
        finally:
            await database.dispose()
        sealed = None if row is None else (row.root_generation, row.sealed_value)
    if sealed is None:
        raise BackupError("the backed-up catalog holds no audit signing key: it is not a "
                          "catalog of this service")
    root = open_root_key(config)
    try:
        value = root.unseal(sealed[0], sealed[1], secret_aad(SIGNING_KEY))
    except CustodyError as exc:
        raise BackupError(f"{root.describe()} cannot open the backup's audit key ({exc}); "
                          f"is this the installation's root key?") from None
    finally:
        root.close()
    return Ed25519PrivateKey.from_private_bytes(value).public_key()


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


def verify_files(src: Path, chain: list[tuple[Path, dict[str, Any]]]) -> None:
    """Every file the snapshot (``chain[0]``) needs, by size and SHA-256: its catalog and
    mirror, the blob list of each snapshot of its chain, and every blob they list
    (blocking)."""
    folder, manifest = chain[0]
    entry = manifest["catalog"]
    if entry["kind"] == "sqlite":
        _check_file(folder / entry["file"], entry["size"], entry["sha256"], "the catalog")
    mirror = manifest.get("checkpoint_mirror")
    if mirror:
        _check_file(folder / mirror["file"], mirror["size"], mirror["sha256"],
                    "the checkpoint mirror")
    for path, snapshot in chain:
        if snapshot["format"] != "recordings-backup/1":
            listed = snapshot["blobs"]
            _check_file(path / listed["file"], listed["size"], listed["sha256"],
                        f"the list of blobs of snapshot {path.name}")
    for blob in chain_blob_list(chain):
        _check_file(src / blob_relpath(blob["name"]), blob["size"], blob["sha256"],
                    f"blob {blob['name']}")


async def _put_blob(services: Services, path: Path, name: str) -> None:
    """Writes a backed-up blob into the store (a directory or a bucket) under its name; a
    write-once store locks it as the original was: until its recording's purge date, and
    under the store's legal hold while a legal hold covers it."""
    store = services.blobs
    rec = None
    if store.locks:
        async with services.database.read() as conn:
            rec = await catalog.get_by_blob_name(conn, name)
    writer = await store.open_writer(name, None if rec is None else rec.purge_at)
    try:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, 8 * 1024 * 1024):
                await writer.write(chunk)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    if rec is not None and rec.legal_holds:
        await store.legal_hold(name, True)


def read_ledger(paths: list[Path]) -> list[dict[str, Any]]:
    """Erasure entries of every given ledger, each recording once."""
    entries: dict[str, dict[str, Any]] = {}
    for path in paths:
        for entry in erasure_ledger.read(path):
            rec_id = entry.get("recording_id")
            if entry.get("action") == "redaction":
                continue
            if isinstance(rec_id, str) and rec_id not in entries:
                entries[rec_id] = entry
    return list(entries.values())


def read_redactions(paths: list[Path]) -> list[dict[str, Any]]:
    """Redaction entries of every given ledger, each once, oldest first (a recording's
    redactions each start from the audio the one before left)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in paths:
        for entry in erasure_ledger.read(path):
            if entry.get("action") == "redaction" and isinstance(entry.get("redaction_id"),
                                                                 str):
                entries.setdefault(entry["redaction_id"], entry)
    return sorted(entries.values(), key=lambda e: str(e.get("redacted_at")))


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
            await retention_store.mark_purging_and_destroy_keys(conn, [rec_id], reason,
                                                                erasure=True)
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


async def _put_blobs(services: Services, src: Path,
                     chain: list[tuple[Path, dict[str, Any]]]) -> int:
    """The blobs the restored catalog reads. A blob an older snapshot of the chain lists
    for a recording purged since is left out: its key is gone."""
    put = 0
    for blob in chain_blob_list(chain):
        async with services.database.read() as conn:
            rec = await catalog.get_by_blob_name(conn, blob["name"])
        if rec is not None and rec.wrapped_dek is not None:
            await _put_blob(services, src / blob_relpath(blob["name"]), blob["name"])
            put += 1
    return put


async def _check_complete(services: Services, chain: list[tuple[Path, dict[str, Any]]],
                          ) -> None:
    """Raises BackupError (and the restore is undone) when the restored catalog reads a
    blob that no snapshot of the chain lists, except those the backup found purged while
    it ran (their erasure is in a ledger). Catalog and lists are walked side by side."""
    gone = {str(b["name"]) for b in chain[0][1].get("missing_blobs", [])}
    listed = chain_blob_list(chain)
    head = next(listed, None)
    unlisted = 0
    async for page in readable_blobs(services.database):
        for name, _ in page:
            while head is not None and str(head["name"]) < name:
                head = next(listed, None)
            if (head is None or head["name"] != name) and name not in gone:
                unlisted += 1
    if unlisted:
        raise BackupError(f"the snapshot's catalog reads {unlisted} blobs that none of its "
                          f"snapshots holds: the backup is incomplete")


async def _put_tiles(services: Services, src: Path, manifest: dict[str, Any],
                     progress: Callable[[str], None]) -> None:
    """The audit archive's tiles into the store, with a checkpoint signed for the restored
    catalog's archive (checked by the full verification that ends the restore)."""
    archived = manifest.get("audit_archive")
    if not archived:
        return
    progress(f"restoring the audit archive ({archived['size']} entries)")
    try:
        await audit_archive.copy_tiles(FilesystemTileStore(src / TILES), services.tiles, 0,
                                       int(archived["size"]))
    except ArchiveDamagedError as exc:
        raise BackupError(f"the backup's audit archive is incomplete: {exc}") from None
    async with services.database.read() as conn:
        archive = await audit_archive.current(conn, services.signing_key.public_key(),
                                              services.config.audit_origin)
    await services.tiles.put(tlog_tiles.CHECKPOINT, audit_archive.signed_checkpoint(
        services.config.audit_origin, archive, services.signing_key, services.clock()))


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
        signature = base64.b64decode((folder / SIGNATURE).read_text().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise BackupError(f"the manifest in {folder} cannot be read ({type(exc).__name__})"
                          ) from None
    on_sqlite = not config.database_url
    progress(f"checking the signature of {folder / MANIFEST}")
    try:
        (await _signing_key(config, folder, on_sqlite)).verify(signature, body)
    except InvalidSignature:
        raise BackupError(f"{folder / MANIFEST} was altered: its signature does not verify "
                          f"with the backed-up audit key") from None
    try:
        manifest = json.loads(body)
        kind = manifest["catalog"]["kind"]
        well_formed = (manifest.get("format") in FORMATS
                       and manifest_bytes(manifest) == body)
    except (ValueError, KeyError, TypeError, AttributeError):
        well_formed = False
    if not well_formed:
        raise BackupError(f"{folder / MANIFEST} is not a backup manifest of this service")
    if (kind == "sqlite") != on_sqlite:
        raise BackupError(f"the backup's catalog is on {kind} but the configuration says "
                          f"otherwise (RECORDINGS_DATABASE_URL)")
    progress(f"verifying snapshot {folder.name}")
    try:
        chain = await asyncio.to_thread(snapshot_chain, src, folder, manifest)
        await asyncio.to_thread(verify_files, src, chain)
    except (KeyError, TypeError, ValueError) as exc:
        # Signed by this service, yet not in the shape it writes: name the manifest.
        raise BackupError(f"{folder / MANIFEST} does not describe its files "
                          f"({type(exc).__name__})") from None

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
            progress("restoring the blobs")
            report.blobs = await _put_blobs(services, src, chain)
            await _put_tiles(services, src, manifest, progress)
            progress(f"replaying {len(entries)} ledger entries")
            report.replayed = await replay_erasures(services, entries)
            await _check_complete(services, chain)
            # After the check: a redaction replayed points its recording at a new blob.
            report.redactions_replayed = await redaction.replay(
                services, RESTORE_ACTOR, read_redactions([p for p in ledgers if p.exists()]))
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
            report.audit_ok = (await jobs.verify_audit(services, full=True)).ok
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
