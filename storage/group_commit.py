"""Group commit: writes that arrive while a commit is in flight go together in the next
transaction, so one fsync covers however many callers are waiting. Each caller returns
only once the transaction holding its write has committed; at low load a batch is one
write and nothing waits longer than it would alone.

``GroupCommitter`` is the mechanism; a subclass says how a batch is written
(``storage/audit_batch.py`` appends audit entries with one read and update of the chain
head). ``GroupCommit`` runs small write transactions (an upload's row, purposes and audit
entry), each in its own savepoint, so one unit's failure (a duplicate call id) rolls back
only that unit: with a transaction and its fsync per upload, concurrent uploads queued
behind each other's commits (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from storage.database import Conn, Database

T = TypeVar("T")
Item = TypeVar("Item")

# What a batch gives each caller: (True, result) or (False, the exception to raise).
Outcome = tuple[bool, Any]


class GroupCommitter(ABC, Generic[Item]):
    # Bounds the transaction size under a burst.
    max_batch: int

    def __init__(self, database: Database) -> None:
        self._database = database
        self._pending: list[tuple[Item, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @abstractmethod
    async def _write(self, conn: Conn, items: list[Item]) -> list[Outcome]:
        """Writes a batch inside its transaction: one outcome per item, in order. What it
        raises rolls the batch back; its items are then committed one by one."""

    async def _submit(self, item: Item) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            # A task of its own: a caller that goes away must not cancel others' commit.
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            size = self.max_batch
            batch, self._pending = self._pending[:size], self._pending[size:]
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, future in [*batch, *self._pending]:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - isolated below, or handed to its waiter
                if len(batch) == 1:
                    self._settle(batch, [(False, exc)])
                    continue
                # One item's failure must not fail the others: each again on its own.
                for one in batch:
                    try:
                        await self._commit([one])
                    except Exception as alone:  # noqa: BLE001 - handed to its waiter
                        self._settle([one], [(False, alone)])

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Any]]]) -> None:
        async with self._database.write() as conn:
            outcomes = await self._write(conn, [item for item, _ in batch])
        self._settle(batch, outcomes)

    @staticmethod
    def _settle(batch: list[tuple[Item, asyncio.Future[Any]]],
                outcomes: list[Outcome]) -> None:
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher


Unit = Callable[[Conn], Awaitable[Any]]


class GroupCommit(GroupCommitter[Unit]):
    max_batch = 64

    async def run(self, unit: Callable[[Conn], Awaitable[T]]) -> T:
        """Runs ``unit`` in a shared write transaction; returns its result once committed,
        or raises what it raised (its writes rolled back, the others' kept)."""
        result: T = await self._submit(unit)
        return result

    async def _write(self, conn: Conn, units: list[Unit]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for unit in units:
            try:
                async with conn.begin_nested():
                    outcomes.append((True, await unit(conn)))
            except Exception as exc:  # noqa: BLE001 - handed to its caller
                outcomes.append((False, exc))
        return outcomes
