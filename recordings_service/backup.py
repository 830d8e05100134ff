"""``recordings-service backup DEST``: a consistent online backup, while ``serve`` runs.

    DEST/blobs/<ab>/<name>            encrypted blobs, shared by every snapshot (immutable,
                                      so each run copies only the new ones)
    DEST/snapshots/<id>/catalog.sqlite3       SQLite online-backup copy (SQLite catalogs)
    DEST/snapshots/<id>/audit-checkpoints.jsonl
    DEST/snapshots/<id>/blobs.jsonl           the blobs it needs, one line each, by name;
                                      in an incremental snapshot, only those of the
                                      recordings uploaded since its base (whose own list,
                                      down the chain to a full snapshot, holds the rest)
    DEST/snapshots/<id>/manifest.json + manifest.sig   what the snapshot holds, signed
                                      (blobs.jsonl by its size and SHA-256)
    DEST/erasure-ledger.jsonl         the erasure ledger, newest copy
    DEST/audit-tiles/                 the audit archive's tiles (immutable, so each run
                                      copies only what was archived since), with a
                                      checkpoint signed for the newest snapshot's archive:
                                      ``audit verify-tiles`` checks it offline

No key material is written: the catalog's keys are sealed under the root key, which stays
in its custody (back it up apart with ``keys export``, or in the HSM).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from recordings_service import auditing
from recordings_service.auditing import SYSTEM_ORIGIN
from recordings_service.auth import Actor
from recordings_service.errors import BackupError
from recordings_service.services import Services
from recordings_service.times import rfc3339
from storage import audit_archive, audit_log, erasure_ledger, tlog_tiles
from storage.blobstore.base import BlobStore
from storage.database import Database
from storage.durable import fsync_path
from storage.errors import BlobNotFoundError
from storage.schema import audit_entries, audit_head, recordings
from storage.signing import public_key_pem
from storage.tilestore.filesystem import FilesystemTileStore

FORMAT = "recordings-backup/3"
# Snapshots of the first format list their blobs in the manifest itself; the second has no
# incremental snapshots. Restore reads all three.
FORMATS = ("recordings-backup/1", "recordings-backup/2", FORMAT)
# A full snapshot after this many incremental ones: a restore reads at most that many
# lists, and a damaged one costs the snapshots after it up to the next full one.
FULL_EVERY = 7
# The audit actions whose entries name a recording that got a blob: the change feed of an
# incremental snapshot (each is in the same transaction as the recording's row).
BLOB_WRITING_ACTIONS = ("upload",)
BLOB_LIST = "blobs.jsonl"
# Recordings read from the catalog per statement while walking it.
WALK_PAGE = 1_000
CATALOG = "catalog.sqlite3"
COPY_CHUNK = 8 * 1024 * 1024
MIRROR = "audit-checkpoints.jsonl"
TILES = "audit-tiles"
# In DEST/audit-tiles: how many archived entries' tiles are copied already.
TILES_COPIED = ".copied-entries"
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
    blobs: int
    copied_blobs: int
    messages: list[str]


async def _catalog_counts(database: Database) -> tuple[dict[str, int], int, str, str]:
    """(recordings by state, audit size, audit root, audit chain hash)."""
    async with database.long_read() as conn:
        rows = (await conn.execute(select(recordings.c.state, func.count())
                                   .group_by(recordings.c.state))).all()
        size, root = await audit_log.head_root(conn)
        chain = (await conn.execute(select(audit_head.c.chain_hash)
                                    .where(audit_head.c.id == 1))).scalar_one()
    return {state: int(n) for state, n in rows}, size, root.hex(), bytes(chain).hex()


@dataclass(frozen=True)
class _Base:
    snapshot: str
    manifest_sha256: str
    audit_size: int
    chain_length: int


async def _base(dest: Path, source: Database, services: Services, size: int,
                ) -> _Base | None:
    """The snapshot an incremental one can follow, or None (then it is a full one)."""
    snapshots = await asyncio.to_thread(
        lambda: sorted((dest / "snapshots").glob("*/" + MANIFEST)) if dest.exists() else [])
    if not snapshots:
        return None
    try:
        body = await asyncio.to_thread(snapshots[-1].read_bytes)
        manifest = json.loads(body)
        audit = manifest["audit"]
        base = _Base(str(manifest["snapshot"]), hashlib.sha256(body).hexdigest(),
                     int(audit["size"]), int(manifest["chain_length"]))
        chain = bytes.fromhex(str(audit["chain_hash"]))
        ours = manifest["public_key"] == public_key_pem(services.signing_key.public_key())
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an older format, or not ours to read: a full snapshot
    if manifest.get("format") != FORMAT or not ours or base.chain_length + 1 >= FULL_EVERY \
            or not 0 < base.audit_size <= size:
        return None
    async with source.read() as conn:
        if base.audit_size <= await audit_archive.archived_size(conn):
            return None  # the entries since the base are no longer all in the catalog
        found = (await conn.execute(select(audit_entries.c.chain_hash).where(
            audit_entries.c.seq == base.audit_size))).scalar()
    return base if found is not None and bytes(found) == chain else None


async def _uploaded_blobs(database: Database, after: int, upto: int,
                          ) -> AsyncIterator[list[tuple[str, str]]]:
    """(blob name, recording id) of the readable recordings uploaded after audit entry
    ``after`` up to ``upto``, in blob name order: entries found through the (action, seq)
    index, rows by primary key. Memory holds what changed, not the catalog."""
    ids: set[str] = set()
    async with database.long_read() as conn:
        for action in BLOB_WRITING_ACTIONS:
            found = await conn.execute(select(audit_entries.c.recording_id).where(
                audit_entries.c.action == action, audit_entries.c.seq > after,
                audit_entries.c.seq <= upto))
            ids |= {r for (r,) in found if r is not None}
        wanted = sorted(ids)
        blobs = []
        c = recordings.c
        for i in range(0, len(wanted), 500):
            rows = await conn.execute(select(c.blob_name, c.id).where(
                c.id.in_(wanted[i:i + 500]), c.blob_name.is_not(None),
                c.wrapped_dek.is_not(None)))
            blobs += [(r.blob_name, r.id) for r in rows]
    blobs.sort()
    for i in range(0, len(blobs), WALK_PAGE):
        yield blobs[i:i + WALK_PAGE]


async def readable_blobs(database: Database) -> AsyncIterator[list[tuple[str, str]]]:
    """(blob name, recording id) of every readable recording, in blob name order, a page
    at a time: memory holds one page, whatever the catalog's size."""
    c = recordings.c
    after = ""
    while True:
        async with database.long_read() as conn:
            rows = (await conn.execute(
                select(c.blob_name, c.id)
                .where(c.blob_name > after, c.wrapped_dek.is_not(None))
                .order_by(c.blob_name).limit(WALK_PAGE))).all()
        if not rows:
            return
        yield [(r.blob_name, r.id) for r in rows]
        after = rows[-1].blob_name


def read_blob_list(folder: Path, manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The blobs a snapshot needs, in name order, read a line at a time (format 2) or
    from the manifest (format 1). Blocking."""
    if manifest.get("format") == "recordings-backup/1":
        yield from sorted(manifest["blobs"], key=lambda b: str(b["name"]))
        return
    with (folder / str(manifest["blobs"]["file"])).open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def snapshot_chain(src: Path, folder: Path, manifest: dict[str, Any],
                   ) -> list[tuple[Path, dict[str, Any]]]:
    """This snapshot and its bases down to a full one, newest first. Each base is the one
    its successor's (signed) manifest names by SHA-256. Blocking."""
    chain = [(folder, manifest)]
    while base := chain[-1][1].get("base"):
        path = src / "snapshots" / str(base["snapshot"])
        try:
            body = (path / MANIFEST).read_bytes()
        except OSError:
            raise BackupError(f"snapshot {chain[-1][0].name} is incremental and needs "
                              f"snapshot {base['snapshot']}, which is missing from {src}"
                              ) from None
        if hashlib.sha256(body).hexdigest() != base["manifest_sha256"]:
            raise BackupError(f"{path / MANIFEST} is not the base snapshot "
                              f"{chain[-1][0].name} was taken on (altered)")
        chain.append((path, json.loads(body)))
    return chain


def chain_blob_list(chain: list[tuple[Path, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Every blob the snapshots of a chain list, once each, in name order (the lists are
    each in name order: merged a line at a time). Blocking."""
    last = None
    for blob in heapq.merge(*(read_blob_list(f, m) for f, m in chain),
                            key=lambda b: str(b["name"])):
        if blob["name"] != last:
            last = blob["name"]
            yield blob


class _PreviousSums:
    """Sizes and sums of the blobs of the newest earlier snapshot (and its chain), read
    alongside the catalog's walk (both in name order): blobs never change, so a run does
    not read them again, and memory holds one line of each list."""

    def __init__(self, dest: Path | None) -> None:
        self._lines: Iterator[dict[str, Any]] = iter(())
        self._head: dict[str, Any] | None = None
        if dest is None or not dest.exists():
            return
        snapshots = sorted((dest / "snapshots").glob("*/" + MANIFEST))
        if not snapshots:
            return
        try:
            manifest = json.loads(snapshots[-1].read_bytes())
            self._lines = chain_blob_list(snapshot_chain(dest, snapshots[-1].parent,
                                                         manifest))
        except (OSError, ValueError, KeyError, TypeError, BackupError):
            return
        self._advance()

    def _advance(self) -> None:
        try:
            self._head = next(self._lines)
        except (StopIteration, OSError, ValueError, KeyError, TypeError):
            self._head = None

    def get(self, name: str) -> tuple[int, str] | None:
        while self._head is not None and str(self._head.get("name")) < name:
            self._advance()
        head = self._head
        if head is None or head.get("name") != name:
            return None
        try:
            return int(head["size"]), str(head["sha256"])
        except (KeyError, TypeError, ValueError):
            return None


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
                 progress: Callable[[str], None] = lambda _: None,
                 full: bool = False) -> BackupResult:
    """A snapshot of the catalog, the blobs it needs and the audit archive into ``dest``.

    Incremental unless ``full`` or there is no suitable base: the newest snapshot in
    ``dest``, of this format, fewer than FULL_EVERY links from a full one, whose audit log
    is a prefix of this one (its chain hash is found at its size: a restored older snapshot
    is a different history) and not yet archived. Then only the blobs of the recordings
    uploaded since are listed and copied: the cost follows what changed."""
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
        catalog_entry: dict[str, Any] = {
            "kind": "sqlite", **await asyncio.to_thread(_described, target)}
    else:
        source = services.database
        catalog_entry = {"kind": "postgresql"}
        messages.append("the catalog is on PostgreSQL: back it up with pg_dump or "
                        "point-in-time recovery; this backup holds the blobs, the "
                        "checkpoint mirror and the ledger for it")
    try:
        counts, audit_size, audit_root, audit_chain = await _catalog_counts(source)
        base = None if full else await _base(dest, source, services, audit_size)
        if base is None:
            listed, missing, copied = await _copy_blobs(
                services.blobs, readable_blobs(source), dest, folder, progress,
                await asyncio.to_thread(_PreviousSums, dest))
        else:
            progress(f"incremental: the changes since snapshot {base.snapshot}")
            listed, missing, copied = await _copy_blobs(
                services.blobs, _uploaded_blobs(source, base.audit_size, audit_size), dest,
                folder, progress, _PreviousSums(None))
        archived = await _copy_tiles(services, source, dest / TILES, progress)
    finally:
        if source is not services.database:
            await source.dispose()

    manifest = {
        "format": FORMAT, "snapshot": snapshot, "taken_at": rfc3339(now),
        "catalog": catalog_entry, "recordings": counts, "blobs": listed,
        "missing_blobs": missing, "checkpoint_mirror": mirror_entry,
        "audit": {"size": audit_size, "root": audit_root, "chain_hash": audit_chain},
        "audit_archive": archived,
        "base": None if base is None else {"snapshot": base.snapshot,
                                           "manifest_sha256": base.manifest_sha256},
        "chain_length": 0 if base is None else base.chain_length + 1,
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
        detail={"snapshot": snapshot, "blobs": listed["count"], "copied_blobs": copied,
                "audit_size": audit_size}))
    return BackupResult(snapshot, folder, manifest, int(listed["count"]), copied, messages)


async def _copy_tiles(services: Services, source: Database, dest: Path,
                      progress: Callable[[str], None]) -> dict[str, Any] | None:
    """Copies the tiles of the snapshot's audit archive that the destination lacks, and
    signs the copy a checkpoint of that archive (the store's own may be of a later run)."""
    config = services.config
    async with source.read() as conn:
        archive = await audit_archive.current(conn, services.signing_key.public_key(),
                                              config.audit_origin)
    if not archive.size:
        return None
    marker = dest / TILES_COPIED
    try:
        done = int(await asyncio.to_thread(marker.read_text))
    except (OSError, ValueError):
        done = 0
    copy = FilesystemTileStore(dest)
    copied = await audit_archive.copy_tiles(services.tiles, copy, min(done, archive.size),
                                            archive.size)
    if copied:
        progress(f"copied {copied} files of the audit archive")
    await copy.put(tlog_tiles.CHECKPOINT, audit_archive.signed_checkpoint(
        config.audit_origin, archive, services.signing_key, services.clock()))
    await copy.put(TILES_COPIED, str(max(done, archive.size)).encode())
    return {"size": archive.size, "root": archive.root.hex()}


# Blobs named as missing in a manifest, at most: each is one the catalog named and a purge
# deleted while the backup ran (its erasure is in the ledger); more is a sign of trouble.
MAX_MISSING_LISTED = 1_000


async def _copy_blobs(store: BlobStore, blobs: AsyncIterator[list[tuple[str, str]]],
                      dest: Path, folder: Path, progress: Callable[[str], None],
                      previous: _PreviousSums,
                      ) -> tuple[dict[str, Any], list[dict[str, str]], int]:
    """Copies the ``blobs`` (pages of name and recording id, in name order) that the
    destination lacks, writing the list of them (blobs.jsonl) as it goes; (its manifest
    entry, blobs missing, blobs copied)."""
    missing: list[dict[str, str]] = []
    missing_count = copied = count = 0
    digest = hashlib.sha256()
    touched: set[Path] = set()
    path = folder / BLOB_LIST
    fd = await asyncio.to_thread(os.open, path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        async for page in blobs:
            lines = []
            for name, rec_id in page:
                dst = dest / blob_relpath(name)
                entry, was_copied = await _copy_blob(store, name, dst, previous.get(name))
                if entry is None:
                    # Purged after the snapshot: its erasure is in the ledger copied below.
                    missing_count += 1
                    if len(missing) < MAX_MISSING_LISTED:
                        missing.append({"name": name, "recording_id": rec_id})
                    continue
                lines.append(json.dumps(entry, sort_keys=True) + "\n")
                count += 1
                if was_copied:
                    copied += 1
                    touched.add(dst.parent)
                    if copied % 100 == 0:
                        progress(f"copied {copied} blobs")
            data = "".join(lines).encode()
            digest.update(data)
            await asyncio.to_thread(os.write, fd, data)
        await asyncio.to_thread(os.fsync, fd)
    finally:
        os.close(fd)
    for parent in touched:
        await asyncio.to_thread(fsync_path, parent)
    if missing_count > len(missing):
        progress(f"{missing_count} blobs were gone; the manifest names the first "
                 f"{len(missing)}")
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    return ({"file": BLOB_LIST, "count": count, "size": size, "sha256": digest.hexdigest()},
            missing, copied)


def taken_at(manifest: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(manifest["taken_at"]).replace("Z", "+00:00"))
