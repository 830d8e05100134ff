"""Blobs as files under a directory, fanned out by the first two characters of the name.

Writes go to ``tmp/`` and are fsynced, renamed into place and the directory fsynced on
commit, so a crash leaves either nothing visible or the whole blob.

Reads never wait for the disk on the event loop, yet cost no thread hand-off when the data
is in the page cache: a read first asks the kernel for cached pages only (``preadv2`` with
``RWF_NOWAIT``) and goes to a worker thread only for what is not cached. Handing every read
to a thread made streaming CPU-bound on thread hand-offs and GIL convoys, not on the disk
(docs/benchmarks.md). Opening a blob (path lookup, ``open``, ``fstat``) stays on the loop,
as in nginx: the fan-out directories of blobs in use are in the kernel's dentry cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiofiles
import aiofiles.os

from storage.blobstore.base import BlobReader, BlobStore, BlobWriter
from storage.durable import fsync_path
from storage.errors import BlobNotFoundError
from storage.threads import run_to_end

# Where the platform or file system cannot read "cached pages only", every read goes to a
# worker thread.
_NOWAIT = getattr(os, "RWF_NOWAIT", 0)


def _read_cached(fd: int, offset: int, length: int) -> tuple[bytearray, int]:
    """Reads what the page cache holds of the span, without waiting for the disk."""
    global _NOWAIT
    if not _NOWAIT:
        return bytearray(), 0
    buffer = bytearray(length)
    try:
        return buffer, os.preadv(fd, [buffer], offset, _NOWAIT)
    except BlockingIOError:
        return buffer, 0
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        _NOWAIT = 0
        return buffer, 0


class _FileReader(BlobReader):
    def __init__(self, fd: int, size: int) -> None:
        self._fd: int | None = fd
        self.size = size

    async def read(self, offset: int, length: int) -> bytes | bytearray:
        fd = self._fd
        if fd is None:
            raise RuntimeError("blob reader is closed")
        length = max(0, min(length, self.size - offset))
        buffer, cached = _read_cached(fd, offset, length)
        if cached == length:
            return buffer
        rest = await run_to_end(lambda: os.pread(fd, length - cached, offset + cached))
        return rest if cached == 0 else bytes(buffer[:cached]) + rest

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# What a writer gathers before one trip to a worker thread writes it.
WRITE_BATCH = 1024 * 1024
# How long a part-filled batch may wait for more before it is written anyway.
IDLE_FLUSH_SECONDS = 0.5
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


class _FileWriter(BlobWriter):
    """Gathers writes in memory and hands them to a worker thread a megabyte at a time;
    commit writes the rest, fsyncs, renames into place and fsyncs the directory in one
    more trip. (A trip per write, as aiofiles makes, kept small uploads waiting on thread
    hand-offs: docs/benchmarks.md.) What waits longer than ``IDLE_FLUSH_SECONDS`` for the
    rest of its batch is written out anyway: a stalled upload holds no megabyte (a 256 KiB
    batch instead cost a third of ingest throughput). Trips run one at a time, in order."""

    def __init__(self, tmp: Path, final: Path) -> None:
        self._tmp = tmp
        self._final = final
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._finished = False
        self._trips = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._idle_flush: asyncio.Task[None] | None = None

    def _write_out(self, chunks: list[bytes]) -> None:
        if self._fd is None:
            self._fd = os.open(self._tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC,
                               0o600)
        # writev, not a join: the thread keeps the GIL only for bookkeeping, so the loop
        # is not kept waiting for it behind a megabyte copy.
        views = [memoryview(c) for c in chunks]
        while views:
            written = os.writev(self._fd, views[:_IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if views and written:
                views[0] = views[0][written:]

    def _take_pending(self) -> list[bytes]:
        chunks, self._pending, self._pending_size = self._pending, [], 0
        return chunks

    async def _flush(self) -> None:
        async with self._trips:
            chunks = self._take_pending()
            if chunks:
                await run_to_end(lambda: self._write_out(chunks))

    def _flush_when_idle(self) -> None:
        self._idle = None
        if self._pending and not self._finished:
            self._idle_flush = asyncio.ensure_future(self._flush())

    async def _stop_idle_flush(self) -> None:
        """No idle flush after this; one already running has finished (or failed: its
        error is this writer's)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        task, self._idle_flush = self._idle_flush, None
        if task is not None:
            await task

    async def write(self, data: bytes) -> None:
        if self._finished:
            raise RuntimeError("blob writer is finished")
        if self._idle_flush is not None and self._idle_flush.done():
            await self._stop_idle_flush()  # raises what it raised
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_BATCH:
            await self._flush()
        elif self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(IDLE_FLUSH_SECONDS,
                                                               self._flush_when_idle)

    async def commit(self) -> None:
        if self._finished:
            raise RuntimeError("blob writer is finished")
        self._finished = True
        await self._stop_idle_flush()
        chunks = self._take_pending()

        def finish() -> None:
            self._write_out(chunks)
            assert self._fd is not None
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, self._final)
            fsync_path(self._final.parent)

        await run_to_end(finish)

    async def abort(self) -> None:
        self._finished = True
        self._pending.clear()
        with contextlib.suppress(OSError):
            await self._stop_idle_flush()  # its trip must end before the file goes

        def discard() -> None:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

        await run_to_end(discard)


class FilesystemBlobStore(BlobStore):
    """Each store (one per process) writes its partial files into a directory of its own
    under ``tmp/``, and holds an exclusive lock on ``tmp/<dir>.lock`` while it lives. The
    start-up clean-up removes only directories whose lock it can take: those of processes
    that are gone, never the uploads a live process (another ``server.workers`` process,
    or one still draining while its parent restarts) is writing."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._blobs = root / "blobs"
        self._blobs_dir = str(self._blobs)
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._own: Path | None = None
        self._own_lock: int | None = None

    def _writing_dir(self) -> Path:
        if self._own is None:
            name = secrets.token_hex(8)
            # Locked before the directory exists: a sweeper that sees the directory
            # always finds its lock taken.
            fd = os.open(self._tmp / f"{name}.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC,
                         0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            (self._tmp / name).mkdir(mode=0o700)
            self._own, self._own_lock = self._tmp / name, fd
        return self._own

    async def close(self) -> None:
        own, fd = self._own, self._own_lock
        self._own = self._own_lock = None
        if own is not None and fd is not None:
            with contextlib.suppress(OSError):
                own.rmdir()  # only when empty: an abandoned write stays for the sweep
                (own.parent / f"{own.name}.lock").unlink()
            os.close(fd)

    def _path(self, name: str) -> Path:
        return Path(self._file(name))

    def _file(self, name: str) -> str:
        # A string, not a Path: this runs on every stream open.
        if len(name) < 3 or not name.isalnum():
            raise BlobNotFoundError("invalid blob name")
        return os.path.join(self._blobs_dir, name[:2], name)

    async def open_writer(self, name: str, retain_until: datetime | None = None,
                          ) -> BlobWriter:
        # The file is created by the first trip that writes to it.
        return _FileWriter(self._writing_dir() / f"{name}.partial", self._path(name))

    async def open_reader(self, name: str, size: int | None = None) -> BlobReader:
        try:
            fd = os.open(self._file(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFoundError("blob is missing") from None
        try:
            return _FileReader(fd, os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise

    async def size(self, name: str) -> int:
        try:
            return (await aiofiles.os.stat(self._path(name))).st_size
        except FileNotFoundError:
            raise BlobNotFoundError("blob is missing") from None

    async def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            await aiofiles.os.remove(path)
        except FileNotFoundError:
            return
        await asyncio.to_thread(fsync_path, path.parent)

    async def delete_many(self, names: list[str]) -> None:
        paths = [self._path(name) for name in names]

        def unlink_all() -> None:
            touched = set()
            for path in paths:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                touched.add(path.parent)
            # One fsync per directory touched, not one per file.
            for directory in touched:
                fsync_path(directory)

        await asyncio.to_thread(unlink_all)

    async def names(self) -> AsyncIterator[tuple[str, datetime]]:
        def scan() -> list[tuple[str, datetime]]:
            found = []
            for sub in sorted(self._blobs.iterdir()):
                if sub.is_dir():
                    for entry in os.scandir(sub):
                        mtime = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                        found.append((entry.name, mtime))
            return found

        for item in await asyncio.to_thread(scan):
            yield item

    async def discard_incomplete(self) -> int:
        return (await asyncio.to_thread(self._sweep_tmp))[0]

    async def writers_elsewhere(self) -> bool:
        return (await asyncio.to_thread(self._sweep_tmp, False))[1] > 0

    async def incomplete_writes(self) -> int:
        def count() -> int:
            return sum(1 for p in self._tmp.rglob("*.partial") if p.is_file())

        return await asyncio.to_thread(count)

    def _sweep_tmp(self, remove: bool = True) -> tuple[int, int]:
        """(partial files removed, live writers elsewhere)."""
        removed = live = 0
        for entry in self._tmp.iterdir():
            if entry == self._own or entry.suffix == ".lock":
                continue
            if not entry.is_dir():
                if remove:  # a partial file of an older version, flat in tmp/
                    entry.unlink(missing_ok=True)
                    removed += 1
                continue
            lock = self._tmp / f"{entry.name}.lock"
            fd = os.open(lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    live += 1
                    continue
                if remove:
                    for partial in entry.iterdir():
                        partial.unlink(missing_ok=True)
                        removed += 1
                    entry.rmdir()
                    lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return removed, live

    async def ping(self) -> None:
        if not await aiofiles.os.path.isdir(self._blobs):
            raise BlobNotFoundError("blob directory is missing")
