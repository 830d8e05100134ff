"""The append-only, tamper-evident audit log.

Each entry is canonical JSON stored exactly as hashed. ``leaf = SHA-256(0x00 || entry)``,
``chain = SHA-256(prev_chain || leaf)``; the head row keeps the size, the chain hash and
the RFC 6962 frontier, so the Merkle root of every size is known. Signed checkpoints
(C2SP signed notes over size and root) go to the database and to a file outside it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, insert, select, true, update

from storage import audit_archive, merkle, tlog_tiles
from storage.database import Conn, Database
from storage.errors import ArchiveDamagedError, AuditChainError
from storage.schema import audit_checkpoints, audit_entries, audit_head, audit_verifications
from storage.signing import open_note, sign_note
from storage.text import make_storable, parse_rfc3339, rfc3339
from storage.tilestore.base import TileStore

ENTRY_FIELDS = ("actor", "roles", "action", "recording_id", "purpose", "outcome", "reason",
                "client_ip", "request_id", "detail")


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    action: str
    outcome: str
    roles: tuple[str, ...] = ()
    recording_id: str | None = None
    purpose: str | None = None
    reason: str | None = None
    client_ip: str | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # An entry must be storable whatever a client sent: a value with an unpaired
        # surrogate (undecodable header bytes) cannot be encoded, a NUL cannot be stored
        # in a PostgreSQL text column. Such characters become U+FFFD here, so the entry
        # still records that the request happened and cannot fail its batch.
        for name in ("actor", "action", "outcome", "recording_id", "purpose", "reason",
                     "client_ip", "request_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _storable(value))
        object.__setattr__(self, "roles", tuple(_storable(r) for r in self.roles))
        object.__setattr__(self, "detail", _storable(self.detail))


def _storable(value: Any) -> Any:
    """``value`` itself when it is clean (the common case, on every audited request),
    else a copy with the offending characters replaced."""
    if isinstance(value, str):
        return make_storable(value)
    if isinstance(value, Mapping):
        items = [(_storable(k), _storable(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(),
                                                                 strict=True)):
            return value
        return dict(items)
    if isinstance(value, list | tuple):
        cleaned = [_storable(v) for v in value]
        if all(c is v for c, v in zip(cleaned, value, strict=True)):
            return value
        return cleaned
    return value


# Built once: every audited request runs these (see storage/catalog.py).
_HEAD_FOR_UPDATE = select(audit_head).where(audit_head.c.id == 1).with_for_update()
_INSERT_ENTRIES = insert(audit_entries)
_UPDATE_HEAD = update(audit_head).where(audit_head.c.id == 1)


def canonical_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()



async def append(conn: Conn, event: AuditEvent, now: datetime) -> dict[str, Any]:
    """Appends inside the caller's write transaction; returns the entry as served."""
    return (await append_many(conn, [(event, now)]))[0]


async def append_placed(conn: Conn, event: AuditEvent, now: datetime,
                        ) -> tuple[dict[str, Any], list[bytes]]:
    """Appends like ``append``; also returns the log's frontier just before the entry, from
    which (with the entries after it) its inclusion in any later checkpoint is proven
    without reading the log before it (``merkle.inclusion_path``)."""
    served, before = await _append(conn, [(event, now)])
    return served[0], before[0]


async def append_many(conn: Conn,
                      events: list[tuple[AuditEvent, datetime]]) -> list[dict[str, Any]]:
    """Appends several entries with one read and one update of the head (group commit)."""
    return (await _append(conn, events))[0]


async def _append(conn: Conn, events: list[tuple[AuditEvent, datetime]],
                  ) -> tuple[list[dict[str, Any]], list[list[bytes]]]:
    head = (await conn.execute(_HEAD_FOR_UPDATE)).one_or_none()
    if head is None:
        raise AuditChainError("audit head row is missing")
    size, chain = head.size, head.chain_hash
    frontier = [bytes.fromhex(h) for h in json.loads(head.frontier)]
    rows, served, before = [], [], []
    for event, now in events:
        content, entry, leaf = _entry(size + 1, event, now)
        new_chain = merkle.chain_hash(chain, leaf)
        before.append(frontier)
        frontier = merkle.frontier_append(frontier, size, leaf)
        rows.append({
            "seq": size + 1, "at": now, "entry": entry, "leaf_hash": leaf, "prev_hash": chain,
            "chain_hash": new_chain, "recording_id": event.recording_id, "actor": event.actor,
            "action": event.action, "purpose": event.purpose, "outcome": event.outcome})
        served.append({**content, "prev_hash": chain.hex(), "hash": new_chain.hex()})
        size, chain = size + 1, new_chain
    await conn.execute(_INSERT_ENTRIES, rows)
    await conn.execute(_UPDATE_HEAD, {"size": size, "chain_hash": chain,
                                      "frontier": json.dumps([h.hex() for h in frontier])})
    return served, before


def _entry(seq: int, event: AuditEvent, now: datetime) -> tuple[dict[str, Any], bytes, bytes]:
    content = {
        "seq": seq,
        "at": rfc3339(now),
        "actor": event.actor,
        "roles": sorted(event.roles),
        "action": event.action,
        "recording_id": event.recording_id,
        "purpose": event.purpose,
        "outcome": event.outcome,
        "reason": event.reason,
        "client_ip": event.client_ip,
        "request_id": event.request_id,
        "detail": dict(event.detail),
    }
    entry = canonical_json(content)
    return content, entry, merkle.leaf_hash(entry)


def _served(row: Any, content: Mapping[str, Any]) -> dict[str, Any]:
    return {**content, "prev_hash": row.prev_hash.hex(), "hash": row.chain_hash.hex()}


@dataclass(frozen=True)
class AuditFilter:
    recording_id: str | None = None
    recording_ids: tuple[str, ...] | None = None
    actor: str | None = None
    action: str | None = None
    purpose: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


# Matches no entry (a filter naming a call no recording has).
NOTHING = AuditFilter(recording_ids=())

# Copies of hashed fields kept as columns for filtering; each must agree with the entry.
COLUMN_FIELDS = ("recording_id", "actor", "action", "purpose", "outcome")


def columns_agree(row: Any, content: Mapping[str, Any]) -> bool:
    """Whether the filterable columns say what the hashed entry says. An edited column
    could hide an entry from a filter or put one into another's results."""
    return (all(getattr(row, name) == content.get(name) for name in COLUMN_FIELDS)
            and rfc3339(row.at) == content.get("at"))


def _matches(content: Mapping[str, Any], flt: AuditFilter) -> bool:
    if flt.recording_ids is not None and content.get("recording_id") not in flt.recording_ids:
        return False
    return all(value is None or content.get(name) == value for name, value in (
        ("recording_id", flt.recording_id), ("actor", flt.actor), ("action", flt.action),
        ("purpose", flt.purpose), ("outcome", flt.outcome)))


async def list_entries(
    conn: Conn, flt: AuditFilter, after_seq: int, limit: int, newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Entries after ``after_seq`` (or, ``newest_first``, before it: 0 is the head) that
    match ``flt`` by their hashed content. Rows are found through the columns, then kept
    only when their columns agree with the content (``audit verify`` reports the rows
    that do not). Each filter column leads an index ending in seq, read either way."""
    c = audit_entries.c
    query = select(audit_entries).order_by(c.seq.desc() if newest_first else c.seq
                                           ).limit(limit)
    for column, value in ((c.recording_id, flt.recording_id), (c.actor, flt.actor),
                          (c.action, flt.action), (c.purpose, flt.purpose),
                          (c.outcome, flt.outcome)):
        if value is not None:
            query = query.where(column == value)
    if flt.recording_ids is not None:
        query = query.where(c.recording_id.in_(flt.recording_ids))
    if flt.since is not None:
        query = query.where(c.at >= flt.since)
    if flt.until is not None:
        query = query.where(c.at < flt.until)
    kept: list[dict[str, Any]] = []
    while len(kept) < limit:
        position = (c.seq < after_seq if after_seq else true()) if newest_first \
            else c.seq > after_seq
        rows = (await conn.execute(query.where(position))).all()
        for row in rows:
            content = json.loads(row.entry)
            if columns_agree(row, content) and _matches(content, flt):
                kept.append(_served(row, content))
        if len(rows) < limit:
            break
        after_seq = rows[-1].seq
    return kept[:limit]


# Entries of the archive one page reads at most, whatever it finds: a filter that
# matches little pages through the archive in steps of this size.
ARCHIVE_SCAN = 4_096


def _in_time(content: Mapping[str, Any], flt: AuditFilter) -> bool:
    try:
        at = parse_rfc3339(str(content.get("at")))
    except ValueError:
        return False
    return (flt.since is None or at >= flt.since) and (flt.until is None or at < flt.until)


async def list_archived(tiles: TileStore, archive: audit_archive.Archive, flt: AuditFilter,
                        after_seq: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Archived entries after ``after_seq`` that match ``flt``, reading at most
    ARCHIVE_SCAN of them; and the last entry read (the next page starts after it)."""
    if flt.since is not None and flt.since > archive.newest_at:
        return [], archive.size  # nothing archived is that recent
    kept: list[dict[str, Any]] = []
    last = after_seq
    async for rows in audit_archive.read_rows(tiles, after_seq,
                                              min(archive.size, after_seq + ARCHIVE_SCAN)):
        for row in rows:
            last = row.seq
            try:
                content = json.loads(row.entry)
            except ValueError:
                continue
            if isinstance(content, dict) and _matches(content, flt) and _in_time(content, flt):
                kept.append(_served(row, content))
                if len(kept) == limit:
                    return kept, last
    return kept, last


# --- checkpoints -----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root_hash: bytes
    signed_at: datetime
    note: str

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "root_hash": self.root_hash.hex(),
                "signed_at": rfc3339(self.signed_at), "note": self.note}


def checkpoint_text(origin: str, size: int, root: bytes, at: datetime) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {rfc3339(at)}\n"


def parse_checkpoint_text(text: str) -> tuple[str, int, bytes, datetime]:
    lines = text.splitlines()
    if len(lines) < 4 or not lines[3].startswith("time "):
        raise ValueError("not a checkpoint")
    at = parse_rfc3339(lines[3][5:])
    return lines[0], int(lines[1]), base64.b64decode(lines[2]), at


async def make_checkpoint(
    database: Database, key: Ed25519PrivateKey, origin: str, mirror: Path, now: datetime
) -> Checkpoint:
    """Signs the current head, even when nothing was appended since the last one."""
    async with database.write() as conn:
        size, root = await head_root(conn)
        note = sign_note(checkpoint_text(origin, size, root, now), origin, key)
        await conn.execute(
            insert(audit_checkpoints).values(size=size, root_hash=root, signed_at=now,
                                             note=note)
        )
        # Mirrored outside the database before the transaction commits: whoever
        # deletes the newest entries must also edit this file.
        mirror.parent.mkdir(parents=True, exist_ok=True)
        with mirror.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"note": note}) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return Checkpoint(size, root, now, note)


async def head_root(conn: Conn) -> tuple[int, bytes]:
    """The log's size and Merkle root now."""
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
    return int(head.size), merkle.frontier_root([bytes.fromhex(h)
                                                 for h in json.loads(head.frontier)])


async def entries_since_checkpoint(conn: Conn) -> tuple[int, datetime | None]:
    """How many entries the newest signed checkpoint does not cover, and when the first
    of them was appended (two primary-key lookups and the max of an indexed-size table)."""
    size = (await conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1))
            ).scalar_one()
    covered = int((await conn.execute(select(func.max(audit_checkpoints.c.size)))).scalar()
                  or 0)
    if size <= covered:
        return 0, None
    first = (await conn.execute(select(audit_entries.c.at)
                                .where(audit_entries.c.seq == covered + 1))).scalar()
    return int(size) - covered, first


async def count_accesses_per_day(conn: Conn, dialect: str, since: datetime,
                                 until: datetime | None = None,
                                 ) -> dict[tuple[date, str], int]:
    """Allowed audio accesses (``stream``) from ``since`` (to ``until``), per UTC day and
    purpose: a range of the (action, at) index. Counted through the filtering columns
    (what verification checks them against)."""
    c = audit_entries.c
    day = (func.date(c.at) if dialect == "sqlite"
           else func.date(func.timezone("UTC", c.at)))
    query = (select(day, c.purpose, func.count())
             .where(c.action == "stream", c.outcome == "allowed", c.at >= since)
             .group_by(day, c.purpose))
    if until is not None:
        query = query.where(c.at < until)
    counts = {}
    for when, purpose, count in (await conn.execute(query)).all():
        # SQLite's date() is text; PostgreSQL's is a date.
        counts[(when if isinstance(when, date) else date.fromisoformat(when),
                purpose or "")] = count
    return counts


async def first_checkpoint_covering(conn: Conn, seq: int) -> Checkpoint | None:
    """The earliest signed checkpoint that holds entry ``seq`` (a seek on the size index):
    the one with the fewest entries after it to read for a proof of inclusion."""
    row = (await conn.execute(
        select(audit_checkpoints).where(audit_checkpoints.c.size >= seq)
        .order_by(audit_checkpoints.c.size, audit_checkpoints.c.id).limit(1))).first()
    return Checkpoint(row.size, row.root_hash, row.signed_at, row.note) if row else None


async def prove_inclusion(database: Database, tiles: TileStore | None, seq: int,
                          frontier_before: list[bytes], checkpoint: Checkpoint,
                          ) -> tuple[dict[str, Any], list[bytes]]:
    """Entry ``seq`` as served and its inclusion path in ``checkpoint``'s tree, from the
    frontier just before it and the leaf hashes from it to the checkpoint's size (read a
    batch at a time, off the catalog or, once archived, the tiles): the cost grows with
    the entries between the entry and its checkpoint, never with the log."""
    problems: list[tuple[int, str]] = []
    entry: dict[str, Any] | None = None
    leaves: list[bytes] = []
    async for rows in _entries(database, tiles, seq - 1, checkpoint.size,
                               lambda at, problem: problems.append((at, problem))):
        for row in rows:
            if entry is None:
                entry = _served(row, json.loads(row.entry))
            leaves.append(row.leaf_hash)
    if problems or entry is None or len(leaves) != checkpoint.size - seq + 1:
        at = problems[0][0] if problems else seq
        raise AuditChainError(f"audit entries {seq}..{checkpoint.size} cannot be read whole "
                              f"(first at {at})")
    return entry, merkle.inclusion_path(seq - 1, checkpoint.size, frontier_before, leaves[1:])


async def list_checkpoints(conn: Conn, limit: int = 100) -> list[Checkpoint]:
    rows = (
        await conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(limit)
        )
    ).all()
    return [Checkpoint(r.size, r.root_hash, r.signed_at, r.note) for r in rows]


# --- verification ----------------------------------------------------------------------


MAX_PROBLEMS = 100


@dataclass
class VerifyReport:
    ok: bool = True
    entries: int = 0
    head_hash: str = merkle.GENESIS.hex()
    checkpoints: int = 0
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    newest_checkpoint_at: datetime | None = None
    stale: bool = False
    full: bool = True
    # Entries up to this one were taken from the newest signed verification statement.
    verified_from: int = 0
    # Entries checked by this run (entries - verified_from).
    checked: int = 0
    last_full_at: datetime | None = None

    def fail(self, seq: int, problem: str) -> None:
        self.ok = False
        # The first ones say where to look; a rewritten log must not make a report of
        # millions of lines.
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append("more problems follow; fix these and verify again")
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq = seq

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head_hash": self.head_hash,
            "checkpoints": self.checkpoints, "first_bad_seq": self.first_bad_seq,
            "problems": self.problems, "stale": self.stale,
            "newest_checkpoint_at": None if self.newest_checkpoint_at is None
            else rfc3339(self.newest_checkpoint_at),
            "full": self.full, "verified_from": self.verified_from, "checked": self.checked,
            "last_full_at": None if self.last_full_at is None else rfc3339(self.last_full_at),
        }


@dataclass(frozen=True)
class Statement:
    """What a verification found, signed: the chain up to ``size`` is intact, with this
    chain hash and Merkle frontier. The next verification starts from it."""
    size: int
    chain_hash: bytes
    frontier: list[bytes]
    full: bool
    verified_at: datetime


# The first line names the kind of note, so that a statement never reads as a checkpoint.
STATEMENT_KIND = "audit verification"


def statement_text(origin: str, st: Statement) -> str:
    return (f"{origin}\n{STATEMENT_KIND}\nsize {st.size}\n"
            f"chain {base64.b64encode(st.chain_hash).decode()}\n"
            f"frontier {','.join(h.hex() for h in st.frontier)}\n"
            f"{'full' if st.full else 'incremental'}\ntime {rfc3339(st.verified_at)}\n")


def parse_statement_text(text: str) -> Statement:
    lines = text.splitlines()
    if len(lines) != 7 or lines[1] != STATEMENT_KIND:
        raise ValueError("not a verification statement")
    fields = [line.partition(" ")[2] for line in lines]
    frontier = [bytes.fromhex(h) for h in fields[4].split(",") if h]
    return Statement(int(fields[2]), base64.b64decode(fields[3]), frontier,
                     lines[5] == "full",
                     parse_rfc3339(fields[6]))


_NEWEST_STATEMENT = (select(audit_verifications)
                     .order_by(audit_verifications.c.id.desc()).limit(1))
_NEWEST_FULL = (select(audit_verifications.c.verified_at)
                .where(audit_verifications.c.full == true())
                .order_by(audit_verifications.c.id.desc()).limit(1))


@dataclass(frozen=True)
class VerificationState:
    """When the log was last verified (up to which entry) and last verified in full."""
    size: int | None
    verified_at: datetime | None
    last_full_at: datetime | None


async def verification_state(conn: Conn) -> VerificationState:
    newest = (await conn.execute(_NEWEST_STATEMENT)).first()
    last_full = (await conn.execute(_NEWEST_FULL)).scalar()
    return VerificationState(None if newest is None else int(newest.size),
                             None if newest is None else newest.verified_at, last_full)


async def _starting_point(conn: Conn, public_key: Ed25519PublicKey, origin: str,
                          ) -> Statement | None:
    """The newest statement, when its signature holds (otherwise start from the beginning:
    a forged or damaged statement must not let a verification skip anything)."""
    row = (await conn.execute(_NEWEST_STATEMENT)).first()
    if row is None:
        return None
    text = open_note(row.note, origin, public_key)
    if text is None:
        return None
    try:
        return parse_statement_text(text)
    except (ValueError, IndexError):
        return None


def _mirrored_notes(mirror: Path, above: int) -> list[str]:
    """Notes of the checkpoint file for sizes from ``above`` on (and the unparsable ones,
    which verification reports)."""
    if not mirror.exists():
        return []
    notes = []
    with mirror.open(encoding="utf-8") as f:
        for line in f:
            try:
                note = str(json.loads(line)["note"])
            except (ValueError, KeyError, TypeError):
                notes.append(line)  # reported as unparsable below
                continue
            try:
                size = int(note.split("\n", 2)[1])
            except (IndexError, ValueError):
                size = above + 1
            if size >= above:
                notes.append(note)
    return notes


async def _entries(database: Database, tiles: TileStore | None, after: int, upto: int,
                   on_problem: Callable[[int, str], None], batch: int = 500,
                   ) -> AsyncIterator[Sequence[Any]]:
    """Entries after ``after`` up to ``upto`` in order, read off the event loop a batch at
    a time; between batches the loop runs others' requests, so checking one batch is the
    longest anyone waits for a verification. Archived entries come from the tiles (an
    archive run that moves entries meanwhile only moves where the next ones are read)."""
    last = after
    while last < upto:
        await asyncio.sleep(0)
        async with database.long_read() as conn:
            archived = await audit_archive.archived_size(conn)
            rows = [] if last < archived else (
                await conn.execute(
                    select(audit_entries)
                    .where(audit_entries.c.seq > last, audit_entries.c.seq <= upto)
                    .order_by(audit_entries.c.seq).limit(batch)
                )
            ).all()
        if last < archived:
            end = min(archived, upto)
            if tiles is None:
                on_problem(last + 1, "entries are archived, but no tile store was given")
                last = end
                continue
            try:
                # From the first entry, the tiles above level 0 are checked as well.
                async for tile_rows in audit_archive.read_rows(
                        tiles, last, end, on_problem if last == 0 else None):
                    if tile_rows:
                        yield tile_rows
                        last = tile_rows[-1].seq
            except ArchiveDamagedError as exc:
                on_problem(exc.seq, str(exc))
                last = end  # the rest of the archive is unreadable; the catalog is read
            continue
        if not rows:
            return
        if rows[0].seq != last + 1:
            async with database.long_read() as conn:
                if await audit_archive.archived_size(conn) > last:
                    continue  # archived (and pruned) since the size was read
        yield rows
        last = rows[-1].seq


async def verify(
    database: Database, public_key: Ed25519PublicKey, origin: str, mirror: Path,
    now: datetime, stale_after: timedelta, *, full: bool = False,
    tiles: TileStore | None = None, signing_key: Ed25519PrivateKey | None = None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> VerifyReport:
    """Verifies the log from the newest signed statement on (or from the first entry when
    ``full`` or when there is none), up to the head as it was when this began: entries
    appended meanwhile are the next run's. Archived entries are read from ``tiles``. With
    ``signing_key``, a run that found the log intact signs a statement of it."""
    report = VerifyReport()
    async with database.long_read() as conn:
        try:
            archive = await audit_archive.current(conn, public_key, origin)
        except AuditChainError as exc:
            report.fail(1, str(exc))
            archive = audit_archive.EMPTY
        start = None if full else await _starting_point(conn, public_key, origin)
        above = 0 if start is None else start.size
        c = audit_checkpoints.c
        db_notes = [r.note for r in await conn.execute(
            select(c.note).where(c.size >= above).order_by(c.id))]
        newest = (await conn.execute(select(c.note).order_by(c.id.desc()).limit(1))).first()
        if newest is not None:
            db_notes.append(newest.note)
        head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
        last_full = (await conn.execute(_NEWEST_FULL)).scalar()
    report.last_full_at = last_full
    report.full = start is None

    # Checkpoint size -> roots claimed for it (a note from the file and from the
    # database may both name one size).
    claimed: dict[int, set[bytes]] = {}
    for note in dict.fromkeys([*db_notes, *_mirrored_notes(mirror, above)]):
        text = open_note(note, origin, public_key)
        if text is None:
            report.fail(above + 1, "a checkpoint's signature does not verify")
            continue
        _, size, root, at = parse_checkpoint_text(text)
        if report.newest_checkpoint_at is None or at > report.newest_checkpoint_at:
            report.newest_checkpoint_at = at
        if size < above:
            continue  # the newest checkpoint, read for its age; verified before
        claimed.setdefault(size, set()).add(root)
        report.checkpoints += 1
    if archive.size > above:
        # The archive's own statement and the checkpoint its tiles carry say what the
        # tree was at its size, as any checkpoint does.
        claimed.setdefault(archive.size, set()).add(archive.root)
        await _tiles_checkpoint(tiles, public_key, origin, archive, report)

    # Entries this old must be under a signed checkpoint: checkpoints are made at least
    # every interval, so an old uncovered entry means checkpoints were deleted.
    covered = max(claimed, default=above)
    must_be_covered_before = now - stale_after
    upto = int(head.size)
    if start is None:
        chain, frontier, leaves = merkle.GENESIS, [], 0
        if 0 in claimed and claimed[0] != {merkle.frontier_root([])}:
            report.fail(1, "checkpoint of the empty log has the wrong root")
    else:
        chain, frontier, leaves = start.chain_hash, list(start.frontier), start.size
        report.verified_from = start.size
        if upto < start.size:
            report.fail(upto + 1, f"the log ends at {upto} but {start.size} entries were "
                                  f"verified on {rfc3339(start.verified_at)}: entries "
                                  f"were deleted")
    expected_seq = leaves + 1
    async for rows in _entries(database, tiles, leaves, upto, report.fail):
        for row in rows:
            if row.seq != expected_seq:
                report.fail(expected_seq, f"entry {expected_seq} is missing")
                expected_seq = row.seq
            chain, frontier = _check_entry(report, row, chain, frontier, leaves)
            leaves += 1
            if row.seq > covered and row.at < must_be_covered_before:
                report.fail(row.seq, f"entry {row.seq} is older than {stale_after} and no "
                                     f"signed checkpoint covers it: checkpoints were removed")
                covered = upto  # reported once, not for every entry after it
            if row.seq in claimed and claimed[row.seq] != {merkle.frontier_root(frontier)}:
                report.fail(row.seq, f"checkpoint at size {row.seq} disagrees with the log")
            if row.seq == archive.size and chain != archive.chain_hash:
                report.fail(row.seq, f"the archived entries up to {row.seq} do not end on "
                                     f"the chain hash their signed statement names")
            expected_seq = row.seq + 1
        progress(expected_seq - 1, upto)

    report.entries = leaves
    report.checked = leaves - report.verified_from
    report.head_hash = chain.hex()
    last_seq = expected_seq - 1
    if last_seq < upto:
        report.fail(last_seq + 1, f"entry {last_seq + 1} is missing")
    elif head.chain_hash != chain:
        report.fail(upto, "the head does not match the entries")
    if start is not None and upto >= start.size > archive.size:
        await _spot_check(database, report, start, archive)
    beyond = [size for size in claimed if size > upto]
    if beyond:
        report.fail(last_seq + 1,
                    f"a checkpoint covers {max(beyond)} entries but the log ends at "
                    f"{last_seq}: its newest entries were deleted")
    if report.newest_checkpoint_at is None or now - report.newest_checkpoint_at > stale_after:
        report.stale = True
        report.problems.append("the newest checkpoint is stale or missing")
    if report.ok and signing_key is not None and (report.full or report.checked):
        statement = Statement(last_seq, chain, frontier, report.full, now)
        await _record_statement(database, origin, statement, signing_key)
        if report.full:
            report.last_full_at = now
    return report


async def _tiles_checkpoint(tiles: TileStore | None, public_key: Ed25519PublicKey, origin: str,
                           archive: audit_archive.Archive, report: VerifyReport) -> None:
    """The checkpoint the tiles carry must be signed and name the archive's size and root:
    it is what an auditor holding only the tiles checks them against."""
    data = None if tiles is None else await tiles.get(tlog_tiles.CHECKPOINT)
    text = None if data is None else open_note(data.decode("utf-8", "replace"), origin,
                                               public_key)
    try:
        _, size, root, _ = parse_checkpoint_text(text or "")
    except (ValueError, IndexError):
        report.fail(archive.size, "the audit archive's checkpoint is missing or its "
                                  "signature does not verify")
        return
    # A larger one is a run that ended since this verification read the statement.
    if size < archive.size or (size == archive.size and root != archive.root):
        report.fail(archive.size, "the audit archive's checkpoint disagrees with the "
                                  "archive's signed statement")


async def verify_tiles(tiles: TileStore, public_key: Ed25519PublicKey) -> VerifyReport:
    """Checks an archive with nothing but its tiles and the public key: the signed
    checkpoint, every entry against its leaf hash, sequence number and chain, every tile
    above level 0 against the tiles below it, and the tree's root against the
    checkpoint's. ``head_hash`` is the chain hash after the last entry, which the first
    entry still in the catalog names as its ``prev_hash``."""
    report = VerifyReport()
    data = await tiles.get(tlog_tiles.CHECKPOINT)
    note = "" if data is None else data.decode("utf-8", "replace")
    origin = note.split("\n", 1)[0]
    text = open_note(note, origin, public_key) if origin else None
    try:
        _, size, root, at = parse_checkpoint_text(text or "")
    except (ValueError, IndexError):
        report.fail(1, "the checkpoint is missing or its signature does not verify")
        return report
    report.checkpoints, report.newest_checkpoint_at = 1, at
    if size % tlog_tiles.WIDTH:
        report.fail(1, "the checkpoint's size is not a whole number of bundles")
        return report
    chain, frontier, leaves = merkle.GENESIS, list[bytes](), 0
    try:
        async for rows in audit_archive.read_rows(tiles, 0, size, report.fail):
            for row in rows:
                chain, frontier = _check_entry(report, row, chain, frontier, leaves)
                leaves += 1
    except ArchiveDamagedError as exc:
        report.fail(exc.seq, str(exc))
        return report
    report.entries = report.checked = leaves
    report.head_hash = chain.hex()
    if merkle.frontier_root(frontier) != root:
        report.fail(size, "the entries' Merkle root differs from the signed checkpoint's")
    return report


def _check_entry(report: VerifyReport, row: Any, chain: bytes, frontier: list[bytes],
                 leaves: int) -> tuple[bytes, list[bytes]]:
    """One entry against its hashes and its predecessor; the chain and frontier after it."""
    leaf = merkle.leaf_hash(row.entry)
    try:
        content = json.loads(row.entry)
    except ValueError:
        content = None
    if not isinstance(content, dict) or content.get("seq") != row.seq:
        report.fail(row.seq, f"entry {row.seq} carries another sequence number")
    if leaf != row.leaf_hash:
        report.fail(row.seq, f"entry {row.seq} does not match its leaf hash")
    if not isinstance(content, dict) or not columns_agree(row, content):
        report.fail(row.seq, f"entry {row.seq}'s searchable columns differ from its "
                             f"hashed content")
    if row.prev_hash != chain:
        report.fail(row.seq, f"entry {row.seq} does not follow its predecessor")
    chain = merkle.chain_hash(chain, leaf)
    if chain != row.chain_hash:
        report.fail(row.seq, f"entry {row.seq} breaks the hash chain")
    return chain, merkle.frontier_append(frontier, leaves, leaf)


# Entries already verified that an incremental run checks again, chosen at random.
SPOT_CHECKS = 256


async def _spot_check(database: Database, report: VerifyReport, start: Statement,
                      archive: audit_archive.Archive) -> None:
    """What an incremental run can say of the entries it does not read again. The entry the
    statement ends on must still hash to the chain hash the statement signed: rewriting
    history consistently changes every chain hash after it, this one included. A rewrite
    that is not consistent (an entry changed, its hashes not) shows in the entry itself:
    a random sample of earlier entries is checked against their hashes and predecessors,
    and a full run checks them all. Archived entries are the full run's to read (their
    tiles are immutable and their root is signed)."""
    archived = archive.size
    verified = range(archived + 1, start.size + 1)
    # All of them while there are few; otherwise distinct ones, none chosen twice.
    seqs = sorted({start.size, *(verified if len(verified) <= SPOT_CHECKS
                                 else secrets.SystemRandom().sample(verified, SPOT_CHECKS))})
    wanted = sorted({*seqs, *(s - 1 for s in seqs if s > archived + 1)})
    rows: dict[int, Any] = {}
    async with database.long_read() as conn:
        for i in range(0, len(wanted), 500):
            found = await conn.execute(select(audit_entries).where(
                audit_entries.c.seq.in_(wanted[i:i + 500])))
            rows |= {row.seq: row for row in found}
        if await audit_archive.archived_size(conn) != archived:
            return  # an archive run moved entries meanwhile: the next run samples again
    for seq in seqs:
        row = rows.get(seq)
        previous = merkle.GENESIS if seq == 1 else getattr(rows.get(seq - 1), "chain_hash",
                                                            None)
        if seq == archived + 1:
            previous = archive.chain_hash  # GENESIS when nothing is archived
        if row is None or previous is None:
            report.fail(seq, f"entry {seq if row is None else seq - 1} is missing, though "
                             f"it was verified on {rfc3339(start.verified_at)}")
            continue
        probe = VerifyReport()
        chain, _ = _check_entry(probe, row, previous, [], 0)
        if not probe.ok or (seq == start.size and chain != start.chain_hash):
            report.fail(seq, f"entry {seq} changed since it was verified on "
                             f"{rfc3339(start.verified_at)}")


async def _record_statement(database: Database, origin: str, statement: Statement,
                            key: Ed25519PrivateKey) -> None:
    note = sign_note(statement_text(origin, statement), origin, key)
    async with database.write() as conn:
        await conn.execute(insert(audit_verifications).values(
            size=statement.size, chain_hash=statement.chain_hash, full=statement.full,
            verified_at=statement.verified_at, note=note))
