"""Group commit of small write transactions (one upload's row, purposes and audit entry).

Units that arrive while a commit is in flight run together in the next transaction, each
in its own savepoint, so one unit's failure (a duplicate call id) rolls back only that
unit. One fsync then covers them all: with a transaction and its fsync per upload,
concurrent uploads queued behind each other's commits (docs/benchmarks.md). A caller
returns only once the transaction holding its unit has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from storage.database import Conn, Database

T = TypeVar("T")

# Bounds the transaction size under a burst.
MAX_BATCH = 64

Unit = Callable[[Conn], Awaitable[Any]]


class GroupCommit:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._pending: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[Conn], Awaitable[T]]) -> T:
        """Runs ``unit`` in a shared write transaction; returns its result once committed,
        or raises what it raised (its writes rolled back, the others' kept)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((unit, future))
        if self._flusher is None or self._flusher.done():
            # A task of its own: a caller that goes away must not cancel others' commit.
            self._flusher = asyncio.create_task(self._flush())
        result: T = await future
        return result

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            outcomes: list[tuple[bool, Any]] = []
            try:
                async with self._database.write() as conn:
                    for unit, _ in batch:
                        try:
                            async with conn.begin_nested():
                                outcomes.append((True, await unit(conn)))
                        except Exception as exc:  # noqa: BLE001 - handed to its caller
                            outcomes.append((False, exc))
            except asyncio.CancelledError:
                for _, future in [*batch, *self._pending]:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - the commit failed: everyone hears
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
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
