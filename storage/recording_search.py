"""Searching recordings: filters, sorts, keyset pages both ways, bounded counts, and ids
matched case-insensitively by prefix.

Each way in leads an index (schema.py, migration 0011), so that a page costs what it
shows, page 50 what page 1 costs, and a count stops at its cap:

- an exact id, a phone number, a state, a subject leads its ``(column, started_at, id)``
  index, read either way;
- an id prefix is first turned into the distinct ids it stands for, one index seek each
  (``MATCHED_IDS`` at most), then each id leads its ``(lower(column), started_at, id)``
  index: with several ids the page is the newest of each id's own newest page;
- with no id, the ``started_at`` or ``duration`` index itself.

Direction, duration range and purpose narrow what the leading index yields.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    exists,
    func,
    literal_column,
    select,
    tuple_,
    union_all,
)

from storage import keyset
from storage.catalog import Recording, with_purposes
from storage.database import Conn
from storage.schema import recording_purposes, recordings

# An id prefix may stand for this many distinct ids; more is a question to narrow.
MATCHED_IDS = 20
# (keys, descending) of each sort; the id breaks ties in the same direction. By agent:
# each agent's calls oldest first (the agent's index read forward), or all reversed.
SORTS: dict[str, tuple[str, bool]] = {
    "-started_at": ("started_at", True), "started_at": ("started_at", False),
    "-duration": ("duration", True), "duration": ("duration", False),
    "agent": ("agent", False), "-agent": ("agent", True)}
DEFAULT_SORT = "-started_at"
# The id columns a prefix can match, the most selective first: it leads the query.
PREFIXED = ("call_id", "customer_id", "agent_id", "queue")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class SearchFilter:
    customer_id: str | None = None
    call_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    state: str | None = None
    subject_ref: str | None = None
    phone_number: str | None = None
    direction: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    # Kept for this purpose at ``kept_at``: not withdrawn, not expired.
    purpose: str | None = None
    kept_at: datetime | None = None
    # The four ids match case-insensitively (ASCII letters; all letters on PostgreSQL)
    # and by prefix: "a-1" finds and a-100.
    prefix: bool = False

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) not in (None, False)}


class TooManyIds(Exception):
    """An id prefix stands for more than ``MATCHED_IDS`` ids."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def id_key(conn: Conn, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The case-folded id the prefix indexes hold. PostgreSQL compares it in the "C"
    collation, so that a prefix is a range of code points there as on SQLite."""
    if conn.dialect.name == "postgresql":
        return func.lower(column).collate("C")
    return func.lower(column)


def _fold(conn: Conn, text: str) -> str:
    # As the database's lower() folds: SQLite's only ASCII letters.
    return text.lower() if conn.dialect.name == "postgresql" else text.translate(_ASCII_LOWER)


async def matching_ids(conn: Conn, field: str, prefix: str) -> list[str]:
    """The distinct case-folded ids that start with ``prefix``, in order: a skip scan, one
    index seek per id, so the cost follows the ids found, not the rows they have."""
    key = id_key(conn, recordings.c[field])
    low = _fold(conn, prefix)
    high = low[:-1] + chr(ord(low[-1]) + 1) if low and ord(low[-1]) < 0x10FFFF else None
    found: list[str] = []
    while len(found) <= MATCHED_IDS:
        # One lower bound only: given two, SQLite seeks on the first and walks the rest.
        query = select(key).where(key > found[-1] if found else key >= low)
        if high is not None:
            query = query.where(key < high)
        value = (await conn.execute(query.order_by(key).limit(1))).scalar()
        if value is None:
            return found
        found.append(value)
    raise TooManyIds(field)


def duration_key(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # A literal, not a parameter: the expression must be the index's to be served by it.
    return func.coalesce(column, literal_column("0.0"))


def _sort_keys(sort: str, columns: Any) -> list[ColumnElement[Any]]:
    """The sort's keys over ``columns`` (the table's, or a subquery's), the id last."""
    kind, _ = SORTS[sort]
    if kind == "duration":
        # A recording whose duration could not be read sorts as 0 s (the index's expression).
        return [duration_key(columns.duration_seconds), columns.id]
    if kind == "agent":
        return [columns.agent_id, columns.started_at, columns.id]
    return [columns.started_at, columns.id]


def _beyond(keys: list[ColumnElement[Any]], position: tuple[Any, ...],
            descending: bool) -> ColumnElement[bool]:
    if len(keys) == 2:
        return (keyset.before if descending else keyset.after)(keys[0], keys[1], position)
    # Three keys: a row value, on which SQLite and PostgreSQL both seek in the index. Alone:
    # beside a bound on its first key, SQLite seeks on that bound and walks the rest.
    return tuple_(*keys) < tuple_(*position) if descending else \
        tuple_(*keys) > tuple_(*position)


def _narrowed(conn: Conn, flt: SearchFilter, ids: dict[str, list[str]]) -> Select[Any]:
    c = recordings.c
    query = select(recordings)
    exact = [(c.phone_number, flt.phone_number), (c.state, flt.state),
             (c.subject_ref, flt.subject_ref), (c.direction, flt.direction)]
    if not flt.prefix:
        exact += [(c[name], getattr(flt, name)) for name in PREFIXED]
    for column, value in exact:
        if value is not None:
            query = query.where(column == value)
    for name, keys in ids.items():
        key = id_key(conn, c[name])
        query = query.where(key == keys[0] if len(keys) == 1 else key.in_(keys))
    if flt.started_after is not None:
        query = query.where(c.started_at >= flt.started_after)
    if flt.started_before is not None:
        query = query.where(c.started_at < flt.started_before)
    duration = duration_key(c.duration_seconds)
    if flt.min_duration is not None:
        query = query.where(duration >= flt.min_duration)
    if flt.max_duration is not None:
        query = query.where(duration <= flt.max_duration)
    if flt.purpose is not None:
        p = recording_purposes.c
        kept = select(p.recording_id).where(
            p.recording_id == c.id, p.purpose == flt.purpose, p.withdrawn_at.is_(None))
        if flt.kept_at is not None:
            kept = kept.where(p.expires_at > flt.kept_at)
        query = query.where(exists(kept))
    return query


async def _prefix_ids(conn: Conn, flt: SearchFilter) -> dict[str, list[str]] | None:
    """Each id prefix given, as the ids it stands for; None when one stands for none."""
    ids: dict[str, list[str]] = {}
    if not flt.prefix:
        return ids
    for name in PREFIXED:
        value = getattr(flt, name)
        if value is not None:
            ids[name] = await matching_ids(conn, name, value)
            if not ids[name]:
                return None
    return ids


async def search(conn: Conn, flt: SearchFilter, position: tuple[Any, ...] | None,
                 limit: int, sort: str = DEFAULT_SORT, backwards: bool = False,
                 ) -> list[Recording]:
    """Up to ``limit`` recordings in ``sort`` order after ``position`` (its keys, the id
    last: ``position_of``), or, ``backwards``, the ones just before it, nearest first."""
    ids = await _prefix_ids(conn, flt)
    if ids is None:
        return []
    descending = SORTS[sort][1] != backwards
    c = recordings.c
    keys = _sort_keys(sort, c)

    def ordered(by: list[ColumnElement[Any]]) -> list[ColumnElement[Any]]:
        return [k.desc() for k in by] if descending else by

    def page(query: Select[Any]) -> Select[Any]:
        if position is not None:
            query = query.where(_beyond(keys, position, descending))
        return query.order_by(*ordered(keys)).limit(limit)

    query = _narrowed(conn, flt, ids)
    if SORTS[sort][0] == "agent":
        query = query.where(c.agent_id.is_not(None))  # tombstones keep no agent
    leading = next((name for name in PREFIXED if len(ids.get(name, ())) > 1), None)
    if leading is None:
        rows = (await conn.execute(page(query))).all()
    else:
        # One page per id, each read from its own index in order; the page is their best.
        key = id_key(conn, c[leading])
        parts = [select(page(query.where(key == k)).subquery()) for k in ids[leading]]
        merged = union_all(*parts).subquery()
        rows = (await conn.execute(select(merged).order_by(
            *ordered(_sort_keys(sort, merged.c))).limit(limit))).all()
    return await with_purposes(conn, rows)


async def count(conn: Conn, flt: SearchFilter, cap: int) -> int:
    """How many recordings match, counted to ``cap`` at most (the caller shows "more than"
    past it): it reads at most ``cap`` index entries, whatever the catalog's size."""
    ids = await _prefix_ids(conn, flt)
    if ids is None:
        return 0
    if flt.state == "active" and any(getattr(flt, n) is not None
                                     for n in (*PREFIXED, "phone_number")):
        # A tombstone keeps none of these ids, so "active" is all but implied: without it
        # the count reads the id's index alone, not a row per match.
        flt = replace(flt, state=None)
    matched = _narrowed(conn, flt, ids).with_only_columns(recordings.c.id).limit(cap)
    return int((await conn.execute(
        select(func.count()).select_from(matched.subquery()))).scalar_one())


def position_of(rec: Recording, sort: str) -> tuple[Any, ...]:
    """The recording's keys in ``sort`` order, the id last: a cursor's position."""
    kind, _ = SORTS[sort]
    if kind == "duration":
        return (rec.duration_seconds or 0.0, rec.id)
    if kind == "agent":
        return (rec.agent_id, rec.started_at, rec.id)
    return (rec.started_at, rec.id)

