"""Quality reports: evaluations per agent, queue and evaluator over a period, as JSON or
CSV. A report names agents and evaluators, not calls or customers; reading it is audited."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recordings_service import auditing
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest
from recordings_service.services import Services
from storage import evaluation_store
from storage.evaluation_store import ReportRow

DEFAULT_DAYS = 30
MAX_DAYS = 366  # the report reads every evaluation of its period
GROUPS = (("agents", "agent_id"), ("queues", "queue"), ("evaluators", "evaluator"))


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    groups: dict[str, list[ReportRow]]

    def json(self) -> dict[str, Any]:
        return {"from": rfc3339(self.since), "to": rfc3339(self.until), **{
            name: [{"key": r.key, "form": r.form, "evaluations": r.evaluations,
                    "average": r.average, "disputed": r.disputed, "calls": r.calls}
                   for r in rows] for name, rows in self.groups.items()}}

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["group", "key", "form", "evaluations", "average", "disputed",
                         "calls", "from", "to"])
        for name, rows in self.groups.items():
            for r in rows:
                writer.writerow([name, _cell(r.key or ""), r.form, r.evaluations, r.average,
                                 r.disputed, r.calls, rfc3339(self.since),
                                 rfc3339(self.until)])
        return out.getvalue()


def _cell(text: str) -> str:
    # A spreadsheet would run a cell starting like a formula (agent ids come from PBXs).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def build(services: Services, actor: Actor, origin: Origin, since: datetime | None,
                until: datetime | None, form_at: str) -> Report:
    until = until or services.clock()
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if not timedelta(0) < until - since <= timedelta(days=MAX_DAYS):
        raise BadRequest("invalid_query", f"from comes before to, at most {MAX_DAYS} days "
                                          f"apart")
    async with services.database.read() as conn:
        groups = {name: await evaluation_store.report(conn, by, since, until)
                  for name, by in GROUPS}
    for rows in groups.values():  # the same order on every database (collations differ)
        rows.sort(key=lambda r: (r.key is None, r.key or "", r.form))
    await auditing.record(services, auditing.event(
        actor, origin, "quality_report", "allowed",
        detail={"from": rfc3339(since), "to": rfc3339(until), "format": form_at}))
    return Report(since, until, groups)
