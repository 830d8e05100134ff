"""Blobs as files under a directory, fanned out by the first two characters of the name.

Writes go to ``tmp/`` and are fsynced, renamed into place and the directory fsynced on
commit, so a crash leaves either nothing visible or the whole blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from storage.blobstore.base import BlobStore, BlobWriter
from storage.errors import BlobNotFoundError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pread(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


class _FileWriter(BlobWriter):
    def __init__(self, file: AsyncBufferedIOBase, tmp: Path, final: Path) -> None:
        self._file = file
        self._tmp = tmp
        self._final = final
        self._closed = False

    async def write(self, data: bytes) -> None:
        await self._file.write(data)

    async def commit(self) -> None:
        await self._file.flush()
        await asyncio.to_thread(os.fsync, self._file.fileno())
        await self._file.close()
        self._closed = True
        await asyncio.to_thread(self._final.parent.mkdir, parents=True, exist_ok=True)
        await aiofiles.os.replace(self._tmp, self._final)
        await asyncio.to_thread(_fsync_dir, self._final.parent)

    async def abort(self) -> None:
        if not self._closed:
            self._closed = True
            await self._file.close()
        with contextlib.suppress(FileNotFoundError):
            await aiofiles.os.remove(self._tmp)


class FilesystemBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self._root = root
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, name: str) -> Path:
        if len(name) < 3 or not name.isalnum():
            raise BlobNotFoundError("invalid blob name")
        return self._blobs / name[:2] / name

    async def open_writer(self, name: str) -> BlobWriter:
        tmp = self._tmp / f"{name}.{secrets.token_hex(4)}.partial"
        fd = await asyncio.to_thread(os.open, tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        file = await aiofiles.open(fd, "wb", buffering=1024 * 1024)
        return _FileWriter(cast(AsyncBufferedIOBase, file), tmp, self._path(name))

    async def read(self, name: str, offset: int, length: int) -> bytes:
        # One trip to a worker thread (open, pread, close) instead of one per call:
        # thread hand-offs, not the disk, dominate small range reads.
        try:
            return await asyncio.to_thread(_pread, self._path(name), offset, length)
        except FileNotFoundError:
            raise BlobNotFoundError("blob is missing") from None

    async def read_spans(self, name: str,
                         spans: list[tuple[int, int]]) -> tuple[int, list[bytes]]:
        def read_all() -> tuple[int, list[bytes]]:
            fd = os.open(self._path(name), os.O_RDONLY)
            try:
                return os.fstat(fd).st_size, [os.pread(fd, n, o) for o, n in spans]
            finally:
                os.close(fd)

        try:
            return await asyncio.to_thread(read_all)
        except FileNotFoundError:
            raise BlobNotFoundError("blob is missing") from None

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
        await asyncio.to_thread(_fsync_dir, path.parent)

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
                _fsync_dir(directory)

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
        def sweep() -> int:
            count = 0
            for entry in self._tmp.iterdir():
                entry.unlink(missing_ok=True)
                count += 1
            return count

        return await asyncio.to_thread(sweep)

    async def ping(self) -> None:
        if not await aiofiles.os.path.isdir(self._blobs):
            raise BlobNotFoundError("blob directory is missing")
