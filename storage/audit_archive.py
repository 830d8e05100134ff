"""The audit archive: old entries moved out of the catalog into immutable tiles.

Entries up to a size (a multiple of 256, covered by a signed checkpoint, verified) are
written to the tile store in the C2SP tlog-tiles layout (storage/tlog_tiles.py) with a
signed checkpoint of that size, then a signed archive statement (size, chain hash, Merkle
frontier) is committed to ``audit_archives`` and the entries are deleted from the catalog.
Verification reads them back from the tiles, and anyone holding the public key can check
the tiles alone (``check``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, func, insert, select

from storage import merkle, tlog_tiles
from storage.database import Conn, Database
from storage.errors import ArchiveDamagedError, AuditChainError
from storage.schema import audit_archives, audit_entries
from storage.signing import open_note, sign_note
from storage.text import parse_rfc3339, rfc3339
from storage.tilestore.base import TileStore

ARCHIVE_KIND = "audit archive"
# Entries deleted from the catalog per transaction once archived.
PRUNE_BATCH = 5_000
_EPOCH = datetime.min.replace(tzinfo=UTC)



@dataclass(frozen=True)
class Archive:
    """Entries 1..size are in the tiles; the chain and the Merkle frontier after them."""
    size: int
    chain_hash: bytes
    frontier: list[bytes]
    # The newest ``at`` among them: a read from a later time need not open a tile.
    newest_at: datetime
    archived_at: datetime

    @property
    def root(self) -> bytes:
        return merkle.frontier_root(self.frontier)


EMPTY = Archive(0, merkle.GENESIS, [], _EPOCH, _EPOCH)


def archive_text(origin: str, a: Archive) -> str:
    return (f"{origin}\n{ARCHIVE_KIND}\nsize {a.size}\n"
            f"chain {base64.b64encode(a.chain_hash).decode()}\n"
            f"frontier {','.join(h.hex() for h in a.frontier)}\n"
            f"newest {rfc3339(a.newest_at)}\ntime {rfc3339(a.archived_at)}\n")


def parse_archive_text(text: str) -> Archive:
    lines = text.splitlines()
    if len(lines) != 7 or lines[1] != ARCHIVE_KIND:
        raise ValueError("not an archive statement")
    fields = [line.partition(" ")[2] for line in lines]
    return Archive(int(fields[2]), base64.b64decode(fields[3]),
                   [bytes.fromhex(h) for h in fields[4].split(",") if h],
                   parse_rfc3339(fields[5]),
                   parse_rfc3339(fields[6]))


_NEWEST = select(audit_archives).order_by(audit_archives.c.id.desc()).limit(1)
_NEWEST_SIZE = select(audit_archives.c.size).order_by(audit_archives.c.id.desc()).limit(1)


async def current(conn: Conn, public_key: Ed25519PublicKey, origin: str) -> Archive:
    """The newest archive statement (EMPTY when nothing was archived). Raises
    AuditChainError when its signature does not hold: entries are gone from the catalog,
    and only a signed statement says what they were."""
    row = (await conn.execute(_NEWEST)).first()
    if row is None:
        return EMPTY
    text = open_note(row.note, origin, public_key)
    try:
        if text is None:
            raise ValueError("signature")
        archive = parse_archive_text(text)
    except (ValueError, IndexError):
        raise AuditChainError("the newest audit archive statement's signature does not "
                              "verify") from None
    if archive.size != row.size:
        raise AuditChainError("the audit archive's size differs from its signed statement")
    return archive


async def archived_size(conn: Conn) -> int:
    """How many entries are in the tiles (the newest statement's size, unverified: for
    reads that go on to check what they read)."""
    return int((await conn.execute(_NEWEST_SIZE)).scalar() or 0)


@dataclass(frozen=True)
class ArchivedRow:
    """An entry read from the tiles, shaped as a catalog row; its columns come from its
    own content (there are no copies to disagree)."""
    seq: int
    entry: bytes
    leaf_hash: bytes
    prev_hash: bytes
    chain_hash: bytes
    at: datetime
    recording_id: Any
    actor: Any
    action: Any
    purpose: Any
    outcome: Any


def _row(seq: int, entry: bytes, leaf: bytes, prev: bytes, chain: bytes) -> ArchivedRow:
    try:
        content = json.loads(entry)
    except ValueError:
        content = None
    if not isinstance(content, dict):
        content = {}
    try:
        at = parse_rfc3339(str(content.get("at")))
    except ValueError:
        at = _EPOCH
    return ArchivedRow(seq, entry, leaf, prev, chain, at, content.get("recording_id"),
                       content.get("actor"), content.get("action"), content.get("purpose"),
                       content.get("outcome"))


async def _need(tiles: TileStore, path: str, seq: int) -> bytes:
    data = await tiles.get(path)
    if data is None:
        raise ArchiveDamagedError(seq, f"the audit archive is missing {path}")
    return data


async def read_bundle(tiles: TileStore, index: int) -> list[ArchivedRow]:
    """The 256 entries of bundle ``index`` with their leaf hashes (from the level-0 tile)
    and chain hashes (from the chain file)."""
    first = index * tlog_tiles.WIDTH + 1
    bundle = await _need(tiles, tlog_tiles.bundle_path(index), first)
    leaves = await _need(tiles, tlog_tiles.tile_path(0, index), first)
    chains = await _need(tiles, tlog_tiles.chain_path(index), first)
    try:
        entries = tlog_tiles.decode_bundle(bundle, tlog_tiles.WIDTH)
        leaf_hashes = tlog_tiles.decode_hashes(leaves, tlog_tiles.WIDTH)
        chain_hashes = tlog_tiles.decode_hashes(chains, tlog_tiles.WIDTH + 1)
    except ValueError as exc:
        raise ArchiveDamagedError(first, f"the audit archive's tiles of entries {first} to "
                                   f"{first + tlog_tiles.WIDTH - 1} are damaged: {exc}"
                            ) from None
    return [_row(first + i, entries[i], leaf_hashes[i], chain_hashes[i], chain_hashes[i + 1])
            for i in range(tlog_tiles.WIDTH)]


async def read_rows(tiles: TileStore, after: int, upto: int,
                    on_problem: Callable[[int, str], None] | None = None,
                    ) -> AsyncIterator[list[ArchivedRow]]:
    """Entries after ``after`` up to ``upto`` (within the archive), a bundle at a time.

    With ``on_problem``, read from the first entry, the tiles above level 0 are checked
    too: each must hold the roots of the tiles below it (what a client of the layout
    trusts when it proves an entry's inclusion)."""
    tree = tlog_tiles.TreeTiles(0) if on_problem is not None and after == 0 else None
    for index in range(after // tlog_tiles.WIDTH, -(-upto // tlog_tiles.WIDTH)):
        rows = await read_bundle(tiles, index)
        if tree is not None and on_problem is not None:
            for path, expected in tree.add([r.leaf_hash for r in rows]):
                if await tiles.get(path) != expected:
                    on_problem(rows[-1].seq, f"the audit archive's {path} does not hold the "
                                             f"roots of the tiles below it")
        yield [r for r in rows if after < r.seq <= upto]
    if tree is not None and on_problem is not None and upto % tlog_tiles.WIDTH == 0:
        for path, expected in tree.partial_tiles():
            if await tiles.get(path) != expected:
                on_problem(upto, f"the audit archive's {path} does not hold the roots of "
                                 f"the tiles below it")


async def _load_tree(tiles: TileStore, size: int) -> tlog_tiles.TreeTiles:
    tree = tlog_tiles.TreeTiles(size)
    for level, index, width in tlog_tiles.partial_widths(size):
        data = await _need(tiles, tlog_tiles.tile_path(level, index, width), size)
        try:
            tree.partials[level] = tlog_tiles.decode_hashes(data, width)
        except ValueError as exc:
            raise ArchiveDamagedError(size, f"the audit archive's partial tile at level {level} "
                                      f"is damaged: {exc}") from None
    return tree


async def catalog_bundle(conn: Conn, index: int) -> list[Any]:
    """The catalog's rows of bundle ``index`` (a range of the primary key)."""
    first = index * tlog_tiles.WIDTH + 1
    return list((await conn.execute(
        select(audit_entries)
        .where(audit_entries.c.seq >= first, audit_entries.c.seq < first + tlog_tiles.WIDTH)
        .order_by(audit_entries.c.seq))).all())


def _checked(rows: list[Any], first: int, chain: bytes) -> bytes:
    """Raises AuditChainError unless ``rows`` are entries first… in order, each hashing
    to its leaf and chaining from the one before; the chain hash after them."""
    for offset, row in enumerate(rows):
        seq = first + offset
        leaf = merkle.leaf_hash(row.entry)
        if row.seq != seq or leaf != row.leaf_hash or row.prev_hash != chain \
                or merkle.chain_hash(chain, leaf) != row.chain_hash:
            raise AuditChainError(f"entry {seq} does not verify; nothing was archived "
                                  f"from there on")
        if len(row.entry) > tlog_tiles.MAX_ENTRY:
            raise AuditChainError(f"entry {seq} is longer than an entry bundle holds")
        chain = row.chain_hash
    return chain


async def archive(database: Database, tiles: TileStore, key: Ed25519PrivateKey, origin: str,
                  upto: int, now: datetime) -> tuple[Archive, Archive]:
    """Moves entries up to ``upto`` (a multiple of 256) into the tiles; the archive before
    and after. The caller has checked that they verify and that a checkpoint covers them.

    Crash-safe and resumable: the tiles are written first (each is determined by the log,
    so writing one again changes nothing), the statement is committed next, and the
    entries are deleted last; a run that finds archived entries still in the catalog
    deletes them."""
    if upto % tlog_tiles.WIDTH:
        raise ValueError("the archive grows by whole bundles")
    async with database.read() as conn:
        before = await current(conn, key.public_key(), origin)
    await prune(database, before.size)
    if upto <= before.size:
        return before, before
    tree = await _load_tree(tiles, before.size)
    chain, frontier, newest = before.chain_hash, list(before.frontier), before.newest_at
    for index in range(before.size // tlog_tiles.WIDTH, upto // tlog_tiles.WIDTH):
        await asyncio.sleep(0)
        first = index * tlog_tiles.WIDTH + 1
        async with database.long_read() as conn:
            rows = await catalog_bundle(conn, index)
        if len(rows) != tlog_tiles.WIDTH:
            raise AuditChainError(f"entries {first} to {first + tlog_tiles.WIDTH - 1} are not "
                                  f"all in the catalog; nothing was archived from there on")
        start = chain
        chain = _checked(rows, first, chain)
        for row in rows:
            frontier = merkle.frontier_append(frontier, row.seq - 1, row.leaf_hash)
            newest = max(newest, row.at)
        await tiles.put(tlog_tiles.bundle_path(index),
                        tlog_tiles.encode_bundle([r.entry for r in rows]))
        await tiles.put(tlog_tiles.chain_path(index),
                        start + b"".join(r.chain_hash for r in rows))
        leaves = [r.leaf_hash for r in rows]
        await tiles.put(tlog_tiles.tile_path(0, index), b"".join(leaves))
        for path, data in tree.add(leaves):
            await tiles.put(path, data)
    for path, data in tree.partial_tiles():
        await tiles.put(path, data)
    after = Archive(upto, chain, frontier, newest, now)
    await tiles.put(tlog_tiles.CHECKPOINT, signed_checkpoint(origin, after, key, now))
    async with database.write() as conn:
        if await archived_size(conn) != before.size:
            raise AuditChainError("another archive run moved entries meanwhile; run again")
        await conn.execute(insert(audit_archives).values(
            size=upto, chain_hash=chain, archived_at=now,
            note=sign_note(archive_text(origin, after), origin, key)))
    await prune(database, upto)
    return before, after


def signed_checkpoint(origin: str, archive: Archive, key: Ed25519PrivateKey,
                      now: datetime) -> bytes:
    """The ``checkpoint`` of the tiles: a signed note over the archive's size and root, in
    the format of the log's own checkpoints."""
    text = (f"{origin}\n{archive.size}\n{base64.b64encode(archive.root).decode()}\n"
            f"time {rfc3339(now)}\n")
    return sign_note(text, origin, key).encode()


async def copy_tiles(source: TileStore, target: TileStore, before: int, size: int) -> int:
    """Copies what an archive of ``size`` holds beyond one of ``before`` (its checkpoint
    aside, which the caller signs for the size it copies); how many files. Raises
    ArchiveDamagedError when one is missing."""
    copied = 0
    for path in tlog_tiles.paths_between(before, size):
        if path != tlog_tiles.CHECKPOINT:
            await target.put(path, await _need(source, path, before + 1))
            copied += 1
    return copied


async def prune(database: Database, size: int) -> int:
    """Deletes archived entries (up to ``size``) still in the catalog, a batch per
    transaction; how many."""
    removed = 0
    while True:
        async with database.write() as conn:
            low = (await conn.execute(select(func.min(audit_entries.c.seq)))).scalar()
            if low is None or low > size:
                return removed
            high = min(int(low) + PRUNE_BATCH - 1, size)
            result = await conn.execute(delete(audit_entries).where(
                audit_entries.c.seq >= low, audit_entries.c.seq <= high))
            removed += int(result.rowcount or 0)
        await asyncio.sleep(0)


async def last_entry_before(conn: Conn, when: datetime, low: int, high: int) -> int:
    """The last entry in (low, high] appended before ``when``: a binary search over the
    primary key (entries are appended in time order), a few dozen lookups at any size."""
    at_of = select(audit_entries.c.at)
    while low < high:
        middle = (low + high + 1) // 2
        at = (await conn.execute(at_of.where(audit_entries.c.seq == middle))).scalar()
        if at is not None and at < when:
            low = middle
        else:
            high = middle - 1
    return low
