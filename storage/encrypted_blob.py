"""Encrypting writes and random-access decrypting reads of blobs (format: streaming_aead)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

from storage.blobstore.base import BlobReader, BlobStore, BlobWriter
from storage.errors import BlobAuthenticationError
from storage.streaming_aead import (
    DEFAULT_PARAMS,
    SegmentDecrypter,
    SegmentEncrypter,
    StreamingParams,
)

# Segments read and decrypted per read (512 KiB): what a stream holds while it waits on a
# slow client. 4 gave 0.8x the throughput; 16 was slower still (docs/benchmarks.md).
SEGMENTS_PER_READ = 8


def associated_data(recording_id: str) -> bytes:
    """Binds a blob to its recording: a blob swapped under another id fails to decrypt."""
    return recording_id.encode()


class EncryptingWriter:
    def __init__(self, writer: BlobWriter, dek: bytes, recording_id: str,
                 params: StreamingParams = DEFAULT_PARAMS) -> None:
        self._writer = writer
        self._encrypter = SegmentEncrypter(dek, associated_data(recording_id), params)
        self._header_written = False

    async def write(self, plaintext: bytes) -> None:
        if not self._header_written:
            await self._writer.write(self._encrypter.header)
            self._header_written = True
        for sealed in self._encrypter.update(plaintext):
            await self._writer.write(sealed)

    async def commit(self) -> None:
        if not self._header_written:
            await self._writer.write(self._encrypter.header)
            self._header_written = True
        await self._writer.write(self._encrypter.finish())
        await self._writer.commit()

    async def abort(self) -> None:
        await self._writer.abort()


class VerifiedHeaders:
    """Headers of blobs this process has opened and checked (length, and the final segment
    authenticated), newest last. Blobs never change, so a second access to one needs
    neither again: on S3 it is one ranged GET instead of three. Every segment served is
    still authenticated on its own (its index and the final flag are in its nonce); a blob
    cut short later fails at the segment that is missing."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._headers: OrderedDict[str, bytes] = OrderedDict()

    def get(self, name: str) -> bytes | None:
        header = self._headers.get(name)
        if header is not None:
            self._headers.move_to_end(name)
        return header

    def put(self, name: str, header: bytes) -> None:
        self._headers[name] = header
        self._headers.move_to_end(name)
        while len(self._headers) > self._capacity:
            self._headers.popitem(last=False)


class DecryptingReader:
    """Reads plaintext ranges of one blob; every byte handed out has been authenticated.

    Use as ``async with``: the blob is opened and checked on entry and released on exit.
    """

    def __init__(self, store: BlobStore, name: str, dek: bytes, recording_id: str,
                 plaintext_size: int, params: StreamingParams = DEFAULT_PARAMS,
                 verified: VerifiedHeaders | None = None) -> None:
        self._store = store
        self._name = name
        self._dek = dek
        self._aad = associated_data(recording_id)
        self._size = plaintext_size
        self._params = params
        self._blob: BlobReader | None = None
        self._decrypter: SegmentDecrypter | None = None
        self._verified = verified

    async def __aenter__(self) -> DecryptingReader:
        header = None if self._verified is None else self._verified.get(self._name)
        if header is not None:
            self._blob = await self._store.open_reader(
                self._name, self._params.ciphertext_size(self._size))
            self._decrypter = SegmentDecrypter(self._dek, self._aad, header, self._size,
                                               self._params)
            return self
        self._blob = await self._store.open_reader(self._name)
        try:
            header = await self._check(self._blob)
        except BaseException:
            await self._blob.close()
            raise
        if self._verified is not None:
            self._verified.put(self._name, header)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._blob is not None:
            await self._blob.close()

    async def _check(self, blob: BlobReader) -> bytes:
        """Checks the length and proves it with the final segment, at constant cost;
        returns the header."""
        p = self._params
        if blob.size != p.ciphertext_size(self._size):
            raise BlobAuthenticationError("blob has the wrong length")
        header = await blob.read(0, p.header_size)
        last = p.segment_count(self._size) - 1
        final = await self._read_exact(blob, *p.ciphertext_span(last, last, self._size))
        decrypter = SegmentDecrypter(self._dek, self._aad, bytes(header), self._size, p)
        decrypter.decrypt_segment(last, final)
        self._decrypter = decrypter
        return bytes(header)

    @staticmethod
    async def _read_exact(blob: BlobReader, offset: int, length: int) -> bytes | bytearray:
        data = await blob.read(offset, length)
        if len(data) != length:
            raise BlobAuthenticationError("blob is truncated")
        return data

    async def iter_range(self, start: int, end: int) -> AsyncIterator[memoryview]:
        """Plaintext bytes ``start..end`` inclusive, in pieces of at most a few segments."""
        if self._blob is None or self._decrypter is None:
            raise RuntimeError("use DecryptingReader in 'async with'")
        if end < start:
            return
        p = self._params
        first, last = p.segment_of(start), p.segment_of(end)
        await self._blob.expect(*p.ciphertext_span(first, last, self._size))
        for batch_start in range(first, last + 1, SEGMENTS_PER_READ):
            batch_end = min(batch_start + SEGMENTS_PER_READ - 1, last)
            plain = self._decrypter.decrypt_span(batch_start, await self._read_exact(
                self._blob, *p.ciphertext_span(batch_start, batch_end, self._size)))
            # The ciphertext is dropped before the caller waits on a slow client: a stream
            # holds one batch of plaintext while it waits, not two buffers.
            base = p.plaintext_start(batch_start)
            yield memoryview(plain)[max(start - base, 0) : min(end + 1 - base, len(plain))]
