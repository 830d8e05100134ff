"""The erasure ledger: one JSON line per purged or erased recording, append-only, fsynced.

It lives beside the catalog (``<data_dir>/erasure-ledger.jsonl``) and outlives it: a
catalog restored from an older backup still holds recordings erased since, and the ledger
is what says which (their id, blob name, when, why, and the signed deletion receipt). It
holds no personal data. A line is written and fsynced before the tombstone commits, so a
crash can leave a line for a recording whose purge the next run finishes, never a purge
without its line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

FILE_NAME = "erasure-ledger.jsonl"


def append(path: Path, entries: Sequence[dict[str, Any]]) -> None:
    """Appends ``entries`` and fsyncs them (blocking: call it from a worker thread)."""
    if not entries:
        return
    created = not path.exists()
    data = "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                   for e in entries).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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
