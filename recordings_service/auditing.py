"""Writing audit entries from the service: who, what, from where, with what outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recordings_service.auth import Actor
from recordings_service.services import Services
from storage import audit_log
from storage.database import Conn


@dataclass(frozen=True)
class Origin:
    """Where a request came from (PCI DSS 10.2.2 "origination of event")."""

    client_ip: str | None
    request_id: str | None


SYSTEM_ORIGIN = Origin(None, None)
# A request whose sender is not known (refused before or at authentication).
ANONYMOUS = Actor("anonymous", frozenset())


def event(actor: Actor, origin: Origin, action: str, outcome: str, *,
          recording_id: str | None = None, purpose: str | None = None,
          reason: str | None = None, detail: Mapping[str, Any] | None = None,
          ) -> audit_log.AuditEvent:
    return audit_log.AuditEvent(
        actor=actor.name, roles=tuple(sorted(actor.roles)), action=action, outcome=outcome,
        recording_id=recording_id, purpose=purpose, reason=reason,
        client_ip=origin.client_ip, request_id=origin.request_id, detail=detail or {},
    )


async def append(services: Services, conn: Conn,
                 entry: audit_log.AuditEvent) -> dict[str, Any]:
    """Appends inside the caller's transaction (the change and its record commit together)."""
    written = await audit_log.append(conn, entry, services.clock())
    services.metrics.audit_appends.labels(entry.action, entry.outcome).inc()
    return written


async def append_placed(services: Services, conn: Conn, entry: audit_log.AuditEvent,
                        ) -> tuple[dict[str, Any], list[bytes]]:
    """Like ``append``, with the log's frontier just before the entry (what proves the
    entry's inclusion in a later checkpoint)."""
    written, before = await audit_log.append_placed(conn, entry, services.clock())
    services.metrics.audit_appends.labels(entry.action, entry.outcome).inc()
    return written, before


async def append_many(services: Services, conn: Conn,
                      entries: list[audit_log.AuditEvent]) -> None:
    if not entries:
        return
    now = services.clock()
    await audit_log.append_many(conn, [(entry, now) for entry in entries])
    for entry in entries:
        services.metrics.audit_appends.labels(entry.action, entry.outcome).inc()


async def record(services: Services, entry: audit_log.AuditEvent) -> dict[str, Any]:
    """Appends on its own (group-committed with concurrent ones); returns once committed.

    Never from inside a write transaction: on SQLite the append would wait for the lock
    that transaction holds (a hang), and on PostgreSQL the log would commit a decision
    before, or without, the change it records."""
    if services.database.holds_write():
        raise RuntimeError("an audit entry is appended outside any write transaction")
    written = await services.audit.append(entry, services.clock())
    services.metrics.audit_appends.labels(entry.action, entry.outcome).inc()
    return written
