"""The blob store interface: opaque, randomly named, already-encrypted objects."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import datetime


def new_blob_name() -> str:
    # Random, never derived from call ids or customers: a listing reveals nothing.
    return secrets.token_hex(16)


class BlobWriter(ABC):
    """A blob being written: invisible under its name until ``commit``."""

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Makes the blob durable and visible; nothing is acknowledged before this."""

    @abstractmethod
    async def abort(self) -> None:
        """Discards everything written; safe to call after a failed write or twice."""


class BlobReader(ABC):
    """A committed blob held open for random reads (one stream), until ``close``."""

    size: int

    @abstractmethod
    async def read(self, offset: int, length: int) -> bytes | bytearray:
        """Reads up to ``length`` bytes at ``offset``; short only at the end of the blob."""

    async def expect(self, offset: int, length: int) -> None:  # noqa: B027 - a hint
        """The reads that follow will cover ``length`` bytes from ``offset`` in order: a
        remote store fetches them with one request instead of one per read."""

    @abstractmethod
    async def close(self) -> None:
        """Releases the blob; safe to call twice. Call it after the reads have returned:
        a read cancelled mid-way returns only once its I/O has ended, so the task that
        was reading may close at once."""


class BlobStore(ABC):
    @abstractmethod
    async def open_writer(self, name: str, retain_until: datetime | None = None,
                          ) -> BlobWriter:
        """A new blob, written under ``retain_until`` when the store keeps blobs write-once
        (the others ignore it)."""

    @abstractmethod
    async def open_reader(self, name: str, size: int | None = None) -> BlobReader:
        """Opens a committed blob; raises BlobNotFoundError when there is none. Given the
        ``size`` a caller knows already, a remote store may skip asking for it (and then
        a missing blob shows at the first read)."""

    async def read(self, name: str, offset: int, length: int) -> bytes:
        """One read of a blob (opens and closes it)."""
        reader = await self.open_reader(name)
        try:
            return bytes(await reader.read(offset, length))
        finally:
            await reader.close()

    @abstractmethod
    async def size(self, name: str) -> int: ...

    @abstractmethod
    async def delete(self, name: str) -> None:
        """Deletes the blob (every version of it); deleting a missing blob is not an error.
        Raises BlobLockedError when the store's write-once retention or a legal hold
        keeps it."""

    async def delete_many(self, names: list[str]) -> None:
        """Deletes several blobs; a backend may do it in fewer round trips."""
        for name in names:
            await self.delete(name)

    @abstractmethod
    def names(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every committed blob with its modification time (for the orphan sweep)."""

    @abstractmethod
    async def discard_incomplete(self) -> int:
        """Removes writes left behind by processes that are gone (never those of a live
        process); returns how many."""

    @abstractmethod
    async def incomplete_writes(self) -> int:
        """How many writes are begun and neither committed nor discarded (any process)."""

    async def writers_elsewhere(self) -> bool:
        """Whether another live process may be writing: then a blob without a catalog row
        may be an upload about to commit it, and the orphan sweep must keep its grace."""
        return False

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Releases what the store holds for this process."""

    # Write-once storage (S3 Object Lock). A store without it keeps no lock: these do
    # nothing there, and its deletes are never refused.
    locks = False

    async def retain(self, name: str, until: datetime) -> None:  # noqa: B027
        """Keeps the blob from deletion and change until ``until`` at least (a retention
        already longer stays as it is)."""

    async def legal_hold(self, name: str, held: bool) -> None:  # noqa: B027
        """Sets or clears the store's legal hold on the blob."""

    @abstractmethod
    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
