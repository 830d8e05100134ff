"""Evaluations: calls scored on quality forms, read by agent and time or by call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from storage import keyset
from storage.database import Conn
from storage.schema import evaluations


@dataclass(frozen=True)
class Evaluation:
    id: str
    recording_id: str
    agent_id: str | None
    form: str
    form_version: int
    evaluator: str
    score: float
    critical_failed: tuple[str, ...]
    answers: dict[str, Any]
    notes: dict[str, str] | None
    call_started_at: datetime
    created_at: datetime


def _evaluation(row: Any) -> Evaluation:
    values = row._asdict()
    values["critical_failed"] = tuple(json.loads(values["critical_failed"]))
    values["answers"] = json.loads(values["answers"])
    values["notes"] = None if values["notes"] is None else json.loads(values["notes"])
    return Evaluation(**values)


async def insert_evaluation(conn: Conn, e: Evaluation) -> None:
    await conn.execute(insert(evaluations), [{
        **e.__dict__, "critical_failed": json.dumps(list(e.critical_failed)),
        "answers": json.dumps(e.answers, sort_keys=True),
        "notes": None if e.notes is None else json.dumps(e.notes, sort_keys=True)}])


async def of_recording(conn: Conn, recording_id: str) -> list[Evaluation]:
    rows = await conn.execute(select(evaluations).where(
        evaluations.c.recording_id == recording_id).order_by(evaluations.c.created_at))
    return [_evaluation(r) for r in rows]


@dataclass(frozen=True)
class EvaluationFilter:
    agent_id: str
    since: datetime | None = None
    until: datetime | None = None
    form: str | None = None


def _where(query: Any, flt: EvaluationFilter) -> Any:
    c = evaluations.c
    query = query.where(c.agent_id == flt.agent_id)
    if flt.since is not None:
        query = query.where(c.created_at >= flt.since)
    if flt.until is not None:
        query = query.where(c.created_at < flt.until)
    if flt.form is not None:
        query = query.where(c.form == flt.form)
    return query


async def of_agent(conn: Conn, flt: EvaluationFilter, before: tuple[datetime, str] | None,
                   limit: int) -> list[Evaluation]:
    """Newest first, keyset-paged on the (agent_id, created_at, id) index."""
    c = evaluations.c
    query = _where(select(evaluations), flt).order_by(c.created_at.desc(), c.id.desc())
    if before is not None:
        query = query.where(keyset.before(c.created_at, c.id, before))
    return [_evaluation(r) for r in await conn.execute(query.limit(limit))]


async def averages(conn: Conn, flt: EvaluationFilter) -> dict[str, tuple[int, float]]:
    """Per form: how many, and their mean score (within the agent's index range)."""
    c = evaluations.c
    query = _where(select(c.form, func.count(), func.avg(c.score)), flt).group_by(c.form)
    return {r[0]: (int(r[1]), round(float(r[2]), 1)) for r in await conn.execute(query)}
