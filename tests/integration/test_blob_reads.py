"""A blob this process has opened and checked is read again with only the range asked for
(on S3: one ranged GET per access instead of three), and still every byte served is
authenticated: a blob cut short or swapped after the first access fails as before."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from storage.blobstore.base import BlobReader
from storage.blobstore.memory import MemoryBlobStore
from storage.encrypted_blob import DecryptingReader, EncryptingWriter, VerifiedHeaders
from storage.errors import BlobAuthenticationError
from storage.keyring import new_dek

AUDIO = os.urandom(300_000)


class _Watched(BlobReader):
    def __init__(self, inner: BlobReader, reads: list[tuple[int, int]]) -> None:
        self._inner, self._reads, self.size = inner, reads, inner.size

    async def read(self, offset: int, length: int) -> bytes | bytearray:
        self._reads.append((offset, length))
        return await self._inner.read(offset, length)

    async def close(self) -> None:
        await self._inner.close()


class WatchedStore(MemoryBlobStore):
    """Records each read and whether the opener knew the size."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, int]] = []
        self.opened_knowing_size: list[bool] = []

    async def open_reader(self, name: str, size: int | None = None) -> BlobReader:
        self.opened_knowing_size.append(size is not None)
        return _Watched(await super().open_reader(name, size), self.reads)


async def _stored(store: WatchedStore, dek: bytes) -> None:
    writer = EncryptingWriter(await store.open_writer("b" * 32), dek, "rec_1")
    await writer.write(AUDIO)
    await writer.commit()


async def _read(store: WatchedStore, dek: bytes, verified: VerifiedHeaders,
                start: int, end: int, recording_id: str = "rec_1") -> bytes:
    async with DecryptingReader(store, "b" * 32, dek, recording_id, len(AUDIO),
                                verified=verified) as reader:
        return b"".join([bytes(p) async for p in reader.iter_range(start, end)])


async def test_a_second_access_reads_only_its_range() -> None:
    store, dek, verified = WatchedStore(), new_dek(), VerifiedHeaders()
    await _stored(store, dek)
    assert await _read(store, dek, verified, 100_000, 100_999) == AUDIO[100_000:101_000]
    first = list(store.reads)
    assert len(first) == 3  # header, final segment, the range
    store.reads.clear()
    assert await _read(store, dek, verified, 200_000, 200_999) == AUDIO[200_000:201_000]
    assert len(store.reads) == 1 and store.opened_knowing_size == [False, True]


async def test_what_changed_after_the_first_access_still_fails() -> None:
    store, dek, verified = WatchedStore(), new_dek(), VerifiedHeaders()
    await _stored(store, dek)
    await _read(store, dek, verified, 0, 99)
    name = "b" * 32
    data, _ = store.blobs[name]
    # Cut short: what remains is still served, what is gone fails.
    store.blobs[name] = (data[:65_536 * 2], datetime.now(UTC))
    assert await _read(store, dek, verified, 70_000, 70_999) == AUDIO[70_000:71_000]
    with pytest.raises(BlobAuthenticationError):
        await _read(store, dek, verified, 250_000, 250_999)
    # A flipped bit, or the blob read as another recording's: never served.
    flipped = bytearray(data)
    flipped[70_000] ^= 1
    store.blobs[name] = (bytes(flipped), datetime.now(UTC))
    with pytest.raises(BlobAuthenticationError):
        await _read(store, dek, verified, 65_600, 70_100)
    store.blobs[name] = (data, datetime.now(UTC))
    with pytest.raises(BlobAuthenticationError):
        await _read(store, dek, verified, 0, 99, recording_id="rec_2")


def test_the_cache_keeps_the_newest_headers() -> None:
    verified = VerifiedHeaders(capacity=2)
    for name in ("a", "b", "c"):
        verified.put(name, name.encode())
    assert verified.get("a") is None and verified.get("c") == b"c"
