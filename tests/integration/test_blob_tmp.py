"""Start-up clean-up removes what dead processes left half-written, never what a live
process is writing (server.workers > 1, a worker draining while the first restarts)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from storage.blobstore.base import new_blob_name
from storage.blobstore.filesystem import FilesystemBlobStore


def _partials(root: Path) -> list[Path]:
    return sorted((root / "tmp").rglob("*.partial"))


async def test_a_live_writers_partial_upload_survives_another_processes_clean_up(
        tmp_path: Path) -> None:
    worker = FilesystemBlobStore(tmp_path)
    writer = await worker.open_writer(name := new_blob_name())
    await writer.write(b"x" * 2_000_000)  # past the in-memory batch: a file on disk
    assert _partials(tmp_path)

    restarted = FilesystemBlobStore(tmp_path)
    assert await restarted.writers_elsewhere()
    assert await restarted.discard_incomplete() == 0
    assert _partials(tmp_path)
    await writer.commit()
    assert await restarted.size(name) == 2_000_000
    await worker.close()
    assert not await restarted.writers_elsewhere()
    await restarted.close()
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []


WRITE_THEN_HANG = """
import asyncio, sys
from pathlib import Path
from storage.blobstore.filesystem import FilesystemBlobStore

async def main():
    store = FilesystemBlobStore(Path(sys.argv[1]))
    writer = await store.open_writer("ab" * 16)
    await writer.write(b"y" * 2_000_000)
    print("written", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_killed_processes_partial_upload_is_removed_at_the_next_start(
        tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITE_THEN_HANG, str(tmp_path),
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 30) == b"written\n"
    store = FilesystemBlobStore(tmp_path)
    assert await store.writers_elsewhere()
    assert await store.discard_incomplete() == 0  # alive: untouched
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert not await store.writers_elsewhere()
    assert await store.discard_incomplete() == 1
    assert _partials(tmp_path) == []
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == []
    await store.close()
