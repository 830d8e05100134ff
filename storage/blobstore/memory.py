"""An in-memory blob store for fast unit tests; it passes the same contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from storage.blobstore.base import BlobReader, BlobStore, BlobWriter
from storage.errors import BlobNotFoundError


class _MemoryWriter(BlobWriter):
    def __init__(self, store: MemoryBlobStore, name: str) -> None:
        self._store, self._name = store, name
        self._data: bytearray | None = bytearray()
        store.writing.add(id(self))

    async def write(self, data: bytes) -> None:
        assert self._data is not None, "write after commit or abort"
        self._data += data

    async def commit(self) -> None:
        assert self._data is not None, "commit after abort"
        self._store.blobs[self._name] = (bytes(self._data), datetime.now(UTC))
        self._finish()

    async def abort(self) -> None:
        self._finish()

    def _finish(self) -> None:
        self._data = None
        self._store.writing.discard(id(self))


class _MemoryReader(BlobReader):
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    async def read(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    async def close(self) -> None:
        pass


class MemoryBlobStore(BlobStore):
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, datetime]] = {}
        self.writing: set[int] = set()

    async def open_writer(self, name: str, retain_until: datetime | None = None,
                          ) -> BlobWriter:
        return _MemoryWriter(self, name)

    async def open_reader(self, name: str, size: int | None = None) -> BlobReader:
        try:
            return _MemoryReader(self.blobs[name][0])
        except KeyError:
            raise BlobNotFoundError("blob not found") from None

    async def size(self, name: str) -> int:
        return (await self.open_reader(name)).size

    async def delete(self, name: str) -> None:
        self.blobs.pop(name, None)

    async def names(self) -> AsyncIterator[tuple[str, datetime]]:
        for name, (_, at) in list(self.blobs.items()):
            yield name, at

    async def discard_incomplete(self) -> int:
        return 0  # an abandoned write dies with its process

    async def incomplete_writes(self) -> int:
        return len(self.writing)

    async def ping(self) -> None:
        pass
