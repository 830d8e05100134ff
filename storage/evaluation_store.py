"""Evaluations: calls scored on quality forms, read by agent and time or by call; what
happened to each (acknowledged, disputed, revised, upheld) in its history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update

from storage import keyset
from storage.database import Conn
from storage.schema import evaluation_history, evaluations

# Where the conversation with the agent stands.
STATUSES = ("open", "acknowledged", "disputed", "revised", "upheld")


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
    queue: str | None = None
    version: int = 1
    status: str = "open"
    updated_at: datetime | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One step: a scoring or revision carries that version's score and answers."""

    version: int
    kind: str  # scored, acknowledged, disputed, revised, upheld
    actor: str
    at: datetime
    score: float | None = None
    critical_failed: tuple[str, ...] | None = None
    answers: dict[str, Any] | None = None
    notes: dict[str, str] | None = None
    comment: str | None = None


def _evaluation(row: Any) -> Evaluation:
    values = row._asdict()
    values["critical_failed"] = tuple(json.loads(values["critical_failed"]))
    values["answers"] = json.loads(values["answers"])
    values["notes"] = None if values["notes"] is None else json.loads(values["notes"])
    return Evaluation(**values)


def _scored(e: Evaluation) -> dict[str, Any]:
    return {"score": e.score, "critical_failed": json.dumps(list(e.critical_failed)),
            "answers": json.dumps(e.answers, sort_keys=True),
            "notes": None if e.notes is None else json.dumps(e.notes, sort_keys=True)}


async def insert_evaluation(conn: Conn, e: Evaluation) -> None:
    await conn.execute(insert(evaluations), [{**e.__dict__, **_scored(e)}])
    await conn.execute(insert(evaluation_history), [{
        "evaluation_id": e.id, "version": e.version, "kind": "scored", "actor": e.evaluator,
        "at": e.created_at, **_scored(e)}])


async def get(conn: Conn, evaluation_id: str, for_update: bool = False) -> Evaluation | None:
    query = select(evaluations).where(evaluations.c.id == evaluation_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    return None if row is None else _evaluation(row)


async def revise(conn: Conn, e: Evaluation, actor: str, comment: str) -> None:
    """``e`` is the new version (its score, answers, notes, version, updated_at)."""
    assert e.updated_at is not None
    await conn.execute(update(evaluations).where(evaluations.c.id == e.id).values(
        version=e.version, form_version=e.form_version, status="revised",
        updated_at=e.updated_at, **_scored(e)))
    await conn.execute(insert(evaluation_history), [{
        "evaluation_id": e.id, "version": e.version, "kind": "revised", "actor": actor,
        "at": e.updated_at, "comment": comment, **_scored(e)}])


async def respond(conn: Conn, e: Evaluation, kind: str, actor: str, comment: str | None,
                  now: datetime) -> None:
    """Acknowledged, disputed or upheld: the status moves, the history says who and why."""
    await conn.execute(update(evaluations).where(evaluations.c.id == e.id).values(
        status=kind, updated_at=now))
    await conn.execute(insert(evaluation_history), [{
        "evaluation_id": e.id, "version": e.version, "kind": kind, "actor": actor, "at": now,
        "comment": comment}])


async def history(conn: Conn, evaluation_id: str) -> list[HistoryEntry]:
    h = evaluation_history.c
    rows = await conn.execute(select(evaluation_history).where(
        h.evaluation_id == evaluation_id).order_by(h.id))
    return [HistoryEntry(
        r.version, r.kind, r.actor, r.at, r.score,
        None if r.critical_failed is None else tuple(json.loads(r.critical_failed)),
        None if r.answers is None else json.loads(r.answers),
        None if r.notes is None else json.loads(r.notes), r.comment) for r in rows]


async def exists_for(conn: Conn, recording_id: str, agent_id: str) -> bool:
    """Whether the call was evaluated as this agent's (the recording index)."""
    c = evaluations.c
    return (await conn.execute(select(c.id).where(
        c.recording_id == recording_id, c.agent_id == agent_id).limit(1))).first() is not None


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


@dataclass(frozen=True)
class ReportRow:
    key: str | None  # the agent, queue or evaluator
    form: str
    evaluations: int
    average: float
    disputed: int  # evaluations the agent disputed (at any version)
    calls: int  # distinct calls


async def report(conn: Conn, by: str, since: datetime, until: datetime) -> list[ReportRow]:
    """Evaluations made in [since, until) grouped by ``by`` (agent_id, queue, evaluator)
    and form: a range of the created_at index, one history probe per evaluation."""
    c, h = evaluations.c, evaluation_history.c
    disputed = select(h.id).where(h.evaluation_id == c.id, h.kind == "disputed").exists()
    key = {"agent_id": c.agent_id, "queue": c.queue, "evaluator": c.evaluator}[by]
    query = (select(key, c.form, func.count(), func.avg(c.score),
                    func.sum(case((disputed, 1), else_=0)),
                    func.count(c.recording_id.distinct()))
             .where(c.created_at >= since, c.created_at < until)
             .group_by(key, c.form).order_by(key, c.form))
    return [ReportRow(r[0], r[1], int(r[2]), round(float(r[3]), 1), int(r[4] or 0),
                      int(r[5])) for r in await conn.execute(query)]
