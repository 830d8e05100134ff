"""The erasure ledger: one JSON line per purged or erased recording, append-only, fsynced.

It lives beside the catalog (``<data_dir>/erasure-ledger.jsonl``) and outlives it: a
catalog restored from an older backup still holds recordings erased since, and the ledger
is what says which (their id, blob name, when, why, and the signed deletion receipt). It
holds no personal data. A line is written and fsynced before the tombstone commits, so a
crash can leave a line for a recording whose purge the next run finishes, never a purge
without its line.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.durable import fsync_path

FILE_NAME = "erasure-ledger.jsonl"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialises the writers of one ledger file (a purge appending, a backup replacing)."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def append(path: Path, entries: Sequence[dict[str, Any]]) -> None:
    """Appends ``entries`` and fsyncs them (blocking: call it from a worker thread)."""
    if not entries:
        return
    with _locked(path):
        _append(path, entries)


def _append(path: Path, entries: Sequence[dict[str, Any]]) -> None:
    created = not path.exists()
    _write(path, "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                         for e in entries).encode())
    if created:
        fsync_path(path.parent)


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every entry; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def mirror(source: Path, copy: Path) -> None:
    """Appends to ``copy`` (a backup destination's ledger) the lines of ``source`` it has
    not received yet.

    Several replicas, each with its own ledger, may mirror into one shared copy: each
    remembers how far its own ledger was copied (``<source>.mirrored.json``, per copy) and
    appends the rest under the copy's lock, so the copy holds every replica's lines. Only
    whole lines are copied (a torn last line is left until it is complete or replaced).
    """
    copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_path = source.with_name(source.name + ".mirrored.json")
    try:
        state = json.loads(state_path.read_bytes())
        if not isinstance(state, dict):
            state = {}
    except (OSError, ValueError):
        state = {}
    key = str(copy.resolve())
    with _locked(copy), source.open("rb") as src:
        offset = int(state.get(key, 0))
        size = src.seek(0, os.SEEK_END)
        if offset > size:
            offset = 0  # the ledger was replaced (a restore): copy it again
        src.seek(offset)
        tail = src.read()
        tail = tail[: tail.rfind(b"\n") + 1]
        if tail:
            created = not copy.exists()
            _write(copy, tail)
            if created:
                fsync_path(copy.parent)
    state[key] = offset + len(tail)
    tmp = state_path.with_name(state_path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_path)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
