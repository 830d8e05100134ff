"""Evaluations: a supervisor scores a call on a configured form while listening to it.

Scoring is an access to the call for ``quality_review``: the policy must allow it on this
recording now, and the decision is audited before anything is stored. The service
computes the score (quality_forms.py) and keeps the form's version with it. The log names
the form, its version and the score, never the text answers: those are personal data
about the call and are dropped when the call is purged or erased, while the score stays
as the agent's quality record.

The agent scored sees their own evaluations (and no one else's), acknowledges one or
disputes it with a comment; a supervisor then revises it (a new version: every version
stays in the history) or upholds it. Every step is audited without its words.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime
from typing import Any

from recordings_service import access, auditing, quality_forms
from recordings_service.auditing import Origin
from recordings_service.auth import Actor, is_agent_only
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest, Conflict, Forbidden, NotFound
from recordings_service.fields import is_text, optional_text, required_text
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.services import Services
from storage import evaluation_store
from storage.evaluation_store import Evaluation, EvaluationFilter, HistoryEntry
from storage.limits import IDENTIFIER

PURPOSE = "quality_review"
COMMENT = 2000
# Which response each side gives, and from which status.
Responses = dict[str, tuple[str, tuple[str, ...]]]
AGENT_RESPONSES: Responses = {"acknowledge": ("acknowledged", ("open", "revised", "upheld")),
                   "dispute": ("disputed", ("open", "revised"))}
REVIEWER_RESPONSES: Responses = {"uphold": ("upheld", ("disputed",))}


def evaluation_json(e: Evaluation) -> dict[str, Any]:
    return {"id": e.id, "recording_id": e.recording_id, "agent_id": e.agent_id,
            "queue": e.queue, "form": e.form, "form_version": e.form_version,
            "evaluator": e.evaluator, "score": e.score,
            "critical_failed": list(e.critical_failed), "answers": e.answers,
            "notes": e.notes, "version": e.version, "status": e.status,
            "call_started_at": rfc3339(e.call_started_at), "created_at": rfc3339(e.created_at),
            "updated_at": rfc3339(e.updated_at)}


def history_json(h: HistoryEntry) -> dict[str, Any]:
    step: dict[str, Any] = {"version": h.version, "kind": h.kind, "actor": h.actor,
                            "at": rfc3339(h.at), "comment": h.comment}
    if h.score is not None:
        step.update(score=h.score, critical_failed=list(h.critical_failed or ()),
                    answers=h.answers, notes=h.notes)
    return step


def _comment(body: dict[str, Any], required: bool) -> str | None:
    if required:
        return required_text(body.get("comment"), "comment", COMMENT, "invalid_evaluation")
    comment = body.get("comment")
    if comment is not None and not is_text(comment, COMMENT):
        raise BadRequest("invalid_evaluation", f"comment is text of at most {COMMENT} "
                                               f"characters")
    return comment.strip() or None if isinstance(comment, str) else None


async def evaluate(services: Services, actor: Actor, origin: Origin, recording_id: str,
                   body: dict[str, Any]) -> Evaluation:
    form = services.config.quality_forms.get(str(body.get("form", "")))
    if form is None:
        raise BadRequest("invalid_evaluation", "form must be one of "
                         + ", ".join(sorted(services.config.quality_forms)))
    scored = quality_forms.score(form, body.get("answers"))
    comment = _comment(body, required=False)
    evaluation_id = "eval_" + secrets.token_urlsafe(12)
    rec = await access.authorize_audio(
        services, actor, origin, "evaluation_add", recording_id, PURPOSE,
        {"evaluation_id": evaluation_id, "form": form.name, "form_version": form.version,
         "score": scored.score})
    notes = dict(scored.texts)
    if comment:
        notes["comment"] = comment
    evaluation = Evaluation(
        evaluation_id, rec.id, rec.agent_id, form.name, form.version, actor.name,
        scored.score, scored.critical_failed, scored.answers, notes or None,
        rec.started_at, services.clock(), queue=rec.queue)
    async with services.database.write() as conn:
        await evaluation_store.insert_evaluation(conn, evaluation)
    services.metrics.evaluations.labels(form.name).inc()
    return evaluation


async def of_recording(services: Services, actor: Actor, origin: Origin,
                       recording_id: str) -> list[Evaluation]:
    """Read as a quality-review access to the call."""
    rec = await access.authorize_audio(services, actor, origin, "evaluations_read",
                                       recording_id, PURPOSE, {})
    async with services.database.read() as conn:
        return await evaluation_store.of_recording(conn, rec.id)


async def of_agent(services: Services, actor: Actor, origin: Origin, agent_id: str,
                   since: datetime | None, until: datetime | None, form: str | None,
                   cursor: str | None, limit: int,
                   ) -> tuple[list[Evaluation], str | None, dict[str, tuple[int, float]]]:
    """An agent's evaluations, newest first, and per form how many and their average. An
    agent reads their own only."""
    agent = optional_text(agent_id, "agent_id", IDENTIFIER, "invalid_query")
    if is_agent_only(actor):
        if agent and agent != actor.agent_id:
            raise Forbidden("not_your_evaluations", "an agent sees their own evaluations only")
        agent = actor.agent_id
    if not agent:
        raise BadRequest("invalid_query", "give an agent_id")
    flt = EvaluationFilter(agent, since, until, form)
    async with services.database.read() as conn:
        found = await evaluation_store.of_agent(conn, flt, decode_cursor(cursor), limit + 1)
        means = await evaluation_store.averages(conn, flt)
    await auditing.record(services, auditing.event(
        actor, origin, "evaluations_read", "allowed", detail={"filter": {
            "agent_id": agent, "form": form, "since": rfc3339(since),
            "until": rfc3339(until)}}))
    page, next_cursor = page_of(found, limit, lambda e: (e.created_at, e.id))
    return page, next_cursor, means


async def _visible(services: Services, actor: Actor, origin: Origin, action: str,
                   evaluation_id: str) -> Evaluation:
    """The evaluation, if this caller may see it: a reviewer any, an agent their own (to
    anyone else it does not exist). A refusal is audited (outside any transaction: on
    SQLite the audit's write would wait for the one holding the write lock)."""
    async with services.database.read() as reading:
        found = await evaluation_store.get(reading, evaluation_id)
    if found is None or (is_agent_only(actor) and found.agent_id != actor.agent_id):
        await auditing.record(services, auditing.event(
            actor, origin, action, "denied", reason="not_found",
            detail={"evaluation_id": evaluation_id[:64]}))
        raise NotFound("no such evaluation")
    return found


async def one(services: Services, actor: Actor, origin: Origin, evaluation_id: str,
              ) -> tuple[Evaluation, list[HistoryEntry]]:
    """An evaluation with every step of its history."""
    found = await _visible(services, actor, origin, "evaluation_read", evaluation_id)
    async with services.database.read() as conn:
        steps = await evaluation_store.history(conn, found.id)
    await auditing.record(services, auditing.event(
        actor, origin, "evaluation_read", "allowed", recording_id=found.recording_id,
        detail={"evaluation_id": found.id}))
    return found, steps


async def respond(services: Services, actor: Actor, origin: Origin, evaluation_id: str,
                  body: dict[str, Any]) -> Evaluation:
    """The agent acknowledges or disputes (with a comment); a reviewer upholds a dispute."""
    kind = str(body.get("response"))
    allowed = AGENT_RESPONSES if is_agent_only(actor) else REVIEWER_RESPONSES
    if kind not in allowed:
        raise BadRequest("invalid_response", "response must be one of "
                         + ", ".join(sorted(allowed)))
    status, from_statuses = allowed[kind]
    comment = _comment(body, required=kind != "acknowledge")
    await _visible(services, actor, origin, "evaluation_response", evaluation_id)
    async with services.database.write() as conn:
        found = await evaluation_store.get(conn, evaluation_id, for_update=True)
        assert found is not None  # evaluations are never deleted
        if found.status not in from_statuses:
            raise Conflict("evaluation_state", f"an evaluation that is {found.status} cannot "
                                               f"be given the response {kind}")
        now = services.clock()
        await evaluation_store.respond(conn, found, status, actor.name, comment, now)
    await auditing.record(services, auditing.event(
        actor, origin, "evaluation_response", "allowed", recording_id=found.recording_id,
        detail={"evaluation_id": found.id, "response": kind, "version": found.version}))
    services.metrics.evaluation_responses.labels(status).inc()
    return dataclasses.replace(found, status=status, updated_at=now)


async def revise(services: Services, actor: Actor, origin: Origin, evaluation_id: str,
                 body: dict[str, Any]) -> Evaluation:
    """A new version of the evaluation, scored again on its form as configured now: an
    access to the call for quality review like the first scoring."""
    comment = _comment(body, required=True)
    async with services.database.read() as conn:
        current = await evaluation_store.get(conn, evaluation_id)
    if current is None:
        raise NotFound("no such evaluation")
    form = services.config.quality_forms.get(current.form)
    if form is None:
        raise Conflict("form_gone", f"the form {current.form!r} is no longer configured")
    scored = quality_forms.score(form, body.get("answers"))
    await access.authorize_audio(
        services, actor, origin, "evaluation_revised", current.recording_id, PURPOSE,
        {"evaluation_id": current.id, "version": current.version + 1, "form": form.name,
         "form_version": form.version, "score": scored.score})
    notes = dict(scored.texts)
    async with services.database.write() as conn:
        locked = await evaluation_store.get(conn, evaluation_id, for_update=True)
        assert locked is not None  # evaluations are never deleted
        revised = dataclasses.replace(
            locked, form_version=form.version, score=scored.score,
            critical_failed=scored.critical_failed, answers=scored.answers,
            notes=notes or None, version=locked.version + 1, status="revised",
            updated_at=services.clock())
        await evaluation_store.revise(conn, revised, actor.name, comment or "")
    services.metrics.evaluation_responses.labels("revised").inc()
    return revised
