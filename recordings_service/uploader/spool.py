"""The spool directory is the queue: what is in it waits, what is uploaded leaves it.

A recording is ready when it has stopped changing for ``stable_seconds`` and no process
has it open for writing (asked of the kernel with a read lease: it is refused while any
writer holds the file open; where leases cannot be taken, stability alone decides), and
its metadata is known: a sidecar ``<stem>.json`` of upload fields, or the file name read
through a pattern. Nothing is remembered across restarts but the files themselves.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recordings_service.uploader.names import NamePattern, PatternError, fields_from_name
from storage.durable import fsync_path

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".opus", ".flac"})
FAILED = "failed"


@dataclass(frozen=True)
class Ready:
    path: Path
    sidecar: Path | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Unusable:
    """A finished file that can never be uploaded as it is (set aside, with why)."""

    path: Path
    sidecar: Path | None
    reason: str
    detail: str


@dataclass
class Scan:
    ready: list[Ready] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)
    waiting: int = 0  # every recording in the spool, ready or not
    oldest_seconds: float = 0.0


def open_for_writing(path: Path) -> bool | None:
    """Whether some process holds ``path`` open for writing; None when the kernel will not
    say (not the file's owner without CAP_LEASE, or a filesystem without leases)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return True  # going away: certainly not ready
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno == errno.EAGAIN else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path, *, purposes: Sequence[str],
                 pattern: NamePattern | None, stable_seconds: float,
                 metadata_grace_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.failed = directory / FAILED
        self._purposes = list(purposes)
        self._pattern = pattern
        self._stable = stable_seconds
        self._grace = metadata_grace_seconds
        self._clock = clock
        # (size, mtime) of each file at the last scan.
        self._seen: dict[str, tuple[int, int]] = {}

    def _stable_for(self, name: str, st: os.stat_result, now: float) -> float:
        """How long the file has not been written to: 0 when it changed since the last
        scan, else the age of its last modification (so after a restart a file finished
        long ago is ready at once)."""
        state = (st.st_size, st.st_mtime_ns)
        before = self._seen.get(name)
        self._seen[name] = state
        if before is not None and before != state:
            return 0.0
        return max(0.0, now - st.st_mtime)

    def scan(self) -> Scan:
        now = self._clock()
        found = Scan()
        present: set[str] = set()
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            present.add(name)
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            quiet = self._stable_for(name, st, now)
            if Path(name).suffix.lower() not in AUDIO_SUFFIXES:
                continue
            found.waiting += 1
            found.oldest_seconds = max(found.oldest_seconds, now - st.st_mtime)
            if quiet < self._stable or open_for_writing(Path(entry.path)):
                continue
            self._classify(Path(entry.path), quiet, found)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        found.ready.sort(key=lambda r: self._seen[r.path.name][1])  # oldest first
        return found

    def _classify(self, path: Path, quiet: float, found: Scan) -> None:
        """Metadata from the name (through the pattern) with the sidecar's fields over it."""
        named: dict[str, Any] | None = None
        if self._pattern is not None:
            try:
                named = fields_from_name(self._pattern, path.name)
            except PatternError as exc:
                found.unusable.append(Unusable(path, None, "invalid_name", str(exc)))
                return
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            if self._stable_for(sidecar.name, sidecar.stat(), self._clock()) < self._stable:
                return  # still being written
            try:
                fields = json.loads(sidecar.read_bytes())
                if not isinstance(fields, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError):
                found.unusable.append(Unusable(path, sidecar, "invalid_sidecar",
                                               "the sidecar is not a JSON object"))
                return
            found.ready.append(Ready(path, sidecar, self._complete((named or {}) | fields,
                                                                   path)))
            return
        if named is not None:
            found.ready.append(Ready(path, None, self._complete(named, path)))
            return
        if quiet >= self._stable + self._grace:
            found.unusable.append(Unusable(
                path, None, "no_metadata",
                "no sidecar appeared and the name does not match the pattern"))

    def _complete(self, fields: dict[str, Any], path: Path) -> dict[str, Any]:
        metadata = dict(fields)
        metadata.setdefault("call_id", path.stem)
        if not metadata.get("purposes"):
            metadata["purposes"] = self._purposes
        return metadata

    # --- leaving the spool -------------------------------------------------------------

    def delivered(self, path: Path, sidecar: Path | None, keep: Path | None) -> None:
        """The service holds the recording: the plaintext leaves the spool for good (or
        for ``keep``), and the directory entry's removal is on disk before we go on."""
        for item in (path, sidecar):
            if item is None:
                continue
            if keep is not None:
                shutil.move(item, keep / item.name)  # a rename, or a copy to another disk
            else:
                item.unlink(missing_ok=True)
        if keep is not None:
            fsync_path(keep)
        fsync_path(self.directory)
        self._forget(path, sidecar)

    def set_aside(self, path: Path, sidecar: Path | None, reason: str, detail: str,
                  status: int | None = None) -> None:
        """A permanent refusal: into ``failed/`` with a ``.reason.json`` saying why."""
        self.failed.mkdir(mode=0o700, exist_ok=True)
        note = {"reason": reason, "detail": detail, "status": status,
                "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        target = self.failed / (path.name + ".reason.json")
        target.write_text(json.dumps(note, indent=2) + "\n")
        for item in (path, sidecar):
            if item is not None and item.exists():
                os.replace(item, self.failed / item.name)
        fsync_path(self.failed)
        fsync_path(self.directory)
        self._forget(path, sidecar)

    def _forget(self, path: Path, sidecar: Path | None) -> None:
        for item in (path, sidecar):
            if item is not None:
                self._seen.pop(item.name, None)
