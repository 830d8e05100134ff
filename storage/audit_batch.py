"""Group commit of audit entries.

Entries that arrive while a commit is in flight are written together by the next one
(``storage/group_commit.py``): one transaction, one read and one update of the chain head,
one fsync, however many requests are waiting. Each caller still returns only once its own
entry is committed, so "written to the audit log before a byte is served" holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage import audit_log
from storage.audit_log import AuditEvent
from storage.database import Conn
from storage.group_commit import GroupCommitter, Outcome


class GroupCommitAppender(GroupCommitter[tuple[AuditEvent, datetime]]):
    max_batch = 256

    async def append(self, event: AuditEvent, at: datetime) -> dict[str, Any]:
        entry: dict[str, Any] = await self._submit((event, at))
        return entry

    async def _write(self, conn: Conn,
                     entries: list[tuple[AuditEvent, datetime]]) -> list[Outcome]:
        return [(True, written) for written in await audit_log.append_many(conn, entries)]
