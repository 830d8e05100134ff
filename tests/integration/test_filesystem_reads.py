"""Filesystem blob reads: cached pages on the loop, the rest in a worker thread."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from storage.blobstore import filesystem
from storage.blobstore.base import new_blob_name
from storage.blobstore.filesystem import FilesystemBlobStore

CONTENT = bytes(range(256)) * 64


async def _stored(tmp_path: Path) -> tuple[FilesystemBlobStore, str]:
    store = FilesystemBlobStore(tmp_path / "blobs-root")
    name = new_blob_name()
    writer = await store.open_writer(name)
    await writer.write(CONTENT)
    await writer.commit()
    return store, name


@pytest.mark.parametrize("cached", [0, 100], ids=["nothing cached", "part cached"])
async def test_what_the_page_cache_lacks_is_read_in_a_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: int) -> None:
    store, name = await _stored(tmp_path)
    threads: set[int] = set()
    real_pread = os.pread

    def cache_holds_only_a_prefix(fd: int, buffers: list[bytearray], offset: int,
                                  flags: int) -> int:
        if not cached:
            raise BlockingIOError
        data = real_pread(fd, cached, offset)
        buffers[0][: len(data)] = data
        return len(data)

    def pread(fd: int, length: int, offset: int) -> bytes:
        threads.add(threading.get_ident())
        return real_pread(fd, length, offset)

    monkeypatch.setattr(filesystem, "_NOWAIT", 8)
    monkeypatch.setattr(os, "preadv", cache_holds_only_a_prefix)
    monkeypatch.setattr(os, "pread", pread)
    reader = await store.open_reader(name)
    assert await reader.read(1000, 5000) == CONTENT[1000:6000]
    await reader.close()
    assert threads and threading.get_ident() not in threads


async def test_a_stream_cancelled_during_a_thread_read_closes_only_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, name = await _stored(tmp_path)
    started, release = threading.Event(), threading.Event()
    real_pread = os.pread
    seen: list[bytes] = []

    def slow_pread(fd: int, length: int, offset: int) -> bytes:
        started.set()
        release.wait(5)
        data = real_pread(fd, length, offset)  # EBADF had the descriptor been closed
        seen.append(data)
        return data

    async def stream() -> None:
        reader = await store.open_reader(name)
        try:
            await reader.read(0, 10)
        finally:
            await reader.close()

    monkeypatch.setattr(filesystem, "_NOWAIT", 0)
    monkeypatch.setattr(os, "pread", slow_pread)
    task = asyncio.create_task(stream())
    assert await asyncio.to_thread(started.wait, 5)
    task.cancel()  # the client went away mid-read
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the thread, descriptor open
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [CONTENT[:10]]
