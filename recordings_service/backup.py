"""``recordings-service backup DEST``: a consistent online backup, while ``serve`` runs.

    DEST/blobs/<ab>/<name>            encrypted blobs, shared by every snapshot (immutable,
                                      so each run copies only the new ones)
    DEST/snapshots/<id>/catalog.sqlite3       SQLite online-backup copy (SQLite catalogs)
    DEST/snapshots/<id>/audit-checkpoints.jsonl
    DEST/snapshots/<id>/manifest.json + manifest.sig   what the snapshot holds, signed
    DEST/erasure-ledger.jsonl         the erasure ledger, newest copy

No key material is written: the catalog's keys are sealed under the root key, which stays
in its custody (back it up apart with ``keys export``, or in the HSM).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from recordings_service import auditing
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.services import Services
from recordings_service.times import rfc3339
from storage import audit_log, erasure_ledger
from storage.blobstore.base import BlobStore
from storage.database import Database
from storage.durable import fsync_path
from storage.errors import BlobNotFoundError
from storage.schema import recordings
from storage.signing import public_key_pem

FORMAT = "recordings-backup/1"
CATALOG = "catalog.sqlite3"
COPY_CHUNK = 8 * 1024 * 1024
MIRROR = "audit-checkpoints.jsonl"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
BACKUP_ACTOR = Actor("system:backup", frozenset())


def blob_relpath(name: str) -> str:
    """Where a backup keeps a blob, relative to its root."""
    return f"blobs/{name[:2]}/{name}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def copy_durably(src: Path, dst: Path) -> None:
    """Copies through a temporary name, fsyncs, then renames: a crash leaves no half file
    under the final name."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dst.with_name(dst.name + ".partial")
    shutil.copyfile(src, tmp)
    fsync_path(tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


def snapshot_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup API: one consistent copy while writers go on."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    fsync_path(target)


def _described(path: Path) -> dict[str, Any]:
    return {"file": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)}


def _copy_file(src: Path, dst: Path) -> dict[str, Any] | None:
    if not src.exists():
        return None
    copy_durably(src, dst)
    return _described(dst)


def _copy_ledger(src: Path, dst: Path) -> None:
    if src.exists():
        erasure_ledger.mirror(src, dst)


def _write_manifest(folder: Path, body: bytes, signature: bytes) -> None:
    for name, data in ((MANIFEST, body), (SIGNATURE, signature)):
        fd = os.open(folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_path(folder)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


@dataclass(frozen=True)
class BackupResult:
    snapshot: str
    path: Path
    manifest: dict[str, Any]
    copied_blobs: int
    messages: list[str]


async def _catalog_state(database: Database) -> tuple[list[tuple[str, str]], dict[str, int],
                                                      int, str]:
    """(blob names of readable recordings with their ids, counts by state, audit size and
    root) from one read transaction."""
    async with database.read() as conn:
        rows = (await conn.execute(select(recordings.c.id, recordings.c.state,
                                          recordings.c.blob_name,
                                          recordings.c.wrapped_dek.is_not(None)))).all()
        size, root = await audit_log.head_root(conn)
    counts: dict[str, int] = {}
    blobs = []
    for rec_id, state, blob_name, has_key in rows:
        counts[state] = counts.get(state, 0) + 1
        if blob_name and has_key:
            blobs.append((rec_id, blob_name))
    return sorted(blobs), counts, size, root.hex()


def _previous_sums(dest: Path) -> dict[str, tuple[int, str]]:
    """Blob sizes and sums from the newest earlier manifest: blobs never change, so an
    incremental run does not read them again."""
    snapshots = sorted((dest / "snapshots").glob("*/" + MANIFEST)) if dest.exists() else []
    if not snapshots:
        return {}
    try:
        data = json.loads(snapshots[-1].read_bytes())
        return {b["name"]: (int(b["size"]), str(b["sha256"])) for b in data["blobs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


async def _copy_blob(store: BlobStore, name: str, dst: Path, known: tuple[int, str] | None,
                     ) -> tuple[dict[str, Any] | None, bool]:
    """(manifest entry, whether copied now); (None, False) when the blob is gone.
    Read through the store (a directory or a bucket), written through a temporary file."""
    if known is not None and await asyncio.to_thread(
            lambda: dst.exists() and dst.stat().st_size == known[0]):
        return {"name": name, "size": known[0], "sha256": known[1]}, False
    try:
        reader = await store.open_reader(name)
    except BlobNotFoundError:
        return None, False
    digest = hashlib.sha256()
    tmp = dst.with_name(dst.name + ".partial")
    await asyncio.to_thread(dst.parent.mkdir, parents=True, exist_ok=True, mode=0o700)
    fd = await asyncio.to_thread(os.open, tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        offset = 0
        while offset < reader.size:
            chunk = bytes(await reader.read(offset, COPY_CHUNK))
            if not chunk:
                break
            digest.update(chunk)
            await asyncio.to_thread(os.write, fd, chunk)
            offset += len(chunk)
        await asyncio.to_thread(os.fsync, fd)
    finally:
        os.close(fd)
        await reader.close()
    await asyncio.to_thread(os.replace, tmp, dst)
    return {"name": name, "size": offset, "sha256": digest.hexdigest()}, True


async def backup(services: Services, dest: Path,
                 progress: Callable[[str], None] = lambda _: None) -> BackupResult:
    config = services.config
    now = services.clock()
    snapshot = now.strftime("%Y%m%dT%H%M%S%fZ")
    folder = dest / "snapshots" / snapshot
    await asyncio.to_thread(folder.mkdir, parents=True, mode=0o700)
    messages: list[str] = []
    # The checkpoint mirror before the catalog: every checkpoint it holds then covers
    # entries the snapshot holds (a newer one would make the restored log look cut).
    mirror_entry = await asyncio.to_thread(_copy_file, config.checkpoint_path, folder / MIRROR)
    on_sqlite = not config.database_url
    if on_sqlite:
        target = folder / CATALOG
        await asyncio.to_thread(snapshot_sqlite, config.data_dir / CATALOG, target)
        source = Database(f"sqlite:///{target}")
        try:
            blobs, counts, audit_size, audit_root = await _catalog_state(source)
        finally:
            await source.dispose()
        catalog_entry: dict[str, Any] = {
            "kind": "sqlite", **await asyncio.to_thread(_described, target)}
    else:
        blobs, counts, audit_size, audit_root = await _catalog_state(services.database)
        catalog_entry = {"kind": "postgresql"}
        messages.append("the catalog is on PostgreSQL: back it up with pg_dump or "
                        "point-in-time recovery; this backup holds the blobs, the "
                        "checkpoint mirror and the ledger for it")

    previous = await asyncio.to_thread(_previous_sums, dest)
    listed, missing = [], []
    copied = 0
    for rec_id, name in blobs:
        entry, was_copied = await _copy_blob(services.blobs, name, dest / blob_relpath(name),
                                             previous.get(name))
        if entry is None:
            # Purged after the snapshot: its erasure is in the ledger copied below.
            missing.append({"name": name, "recording_id": rec_id})
            continue
        listed.append(entry)
        copied += was_copied
        if was_copied and copied % 100 == 0:
            progress(f"copied {copied} blobs")
    for parent in {(dest / blob_relpath(name)).parent for _, name in blobs}:
        await asyncio.to_thread(fsync_path, parent)

    manifest = {
        "format": FORMAT, "snapshot": snapshot, "taken_at": rfc3339(now),
        "catalog": catalog_entry, "recordings": counts, "blobs": listed,
        "missing_blobs": missing, "checkpoint_mirror": mirror_entry,
        "audit": {"size": audit_size, "root": audit_root},
        "public_key": public_key_pem(services.signing_key.public_key()),
    }
    body = manifest_bytes(manifest)
    signature = base64.b64encode(services.signing_key.sign(body)) + b"\n"
    await asyncio.to_thread(_write_manifest, folder, body, signature)
    # The ledger last: it then holds every erasure up to the end of this backup.
    await asyncio.to_thread(_copy_ledger, config.erasure_ledger_path,
                            dest / erasure_ledger.FILE_NAME)
    await auditing.record(services, auditing.event(
        BACKUP_ACTOR, SYSTEM_ORIGIN, "backup", "allowed",
        detail={"snapshot": snapshot, "blobs": len(listed), "copied_blobs": copied,
                "audit_size": audit_size}))
    return BackupResult(snapshot, folder, manifest, copied, messages)


def taken_at(manifest: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(manifest["taken_at"]).replace("Z", "+00:00"))
