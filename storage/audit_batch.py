"""Group commit of audit entries.

Entries that arrive while a commit is in flight are written together by the next one: one
transaction, one read and one update of the chain head, one fsync, however many requests
are waiting. Each caller still returns only once its own entry is committed, so "written
to the audit log before a byte is served" holds; at low load a batch is one entry and
nothing waits longer than before.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from storage import audit_log
from storage.audit_log import AuditEvent
from storage.database import Database

# Bounds the transaction size under a burst.
MAX_BATCH = 256


class GroupCommitAppender:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._pending: list[tuple[AuditEvent, datetime, asyncio.Future[dict[str, Any]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: AuditEvent, at: datetime) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((event, at, future))
        if self._flusher is None or self._flusher.done():
            # A task of its own: a caller that goes away must not cancel others' commit.
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with self._database.write() as conn:
                    written = await audit_log.append_many(conn, [(e, at) for e, at, _ in batch])
            except asyncio.CancelledError:
                for _, _, future in [*batch, *self._pending]:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every waiter, not swallowed
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), entry in zip(batch, written, strict=True):
                if not future.done():
                    future.set_result(entry)

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher
