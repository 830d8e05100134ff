"""Evaluations: a supervisor scores a call on a configured form while listening to it.

Scoring is an access to the call for ``quality_review``: the policy must allow it on this
recording now, and the decision is audited before anything is stored. The service
computes the score (quality_forms.py) and keeps the form's version with it. The log names
the form, its version and the score, never the text answers: those are personal data
about the call and are dropped when the call is purged or erased, while the score stays
as the agent's quality record.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from recordings_service import access, auditing, quality_forms
from recordings_service.auditing import Origin
from recordings_service.auth import Actor
from recordings_service.documents import rfc3339
from recordings_service.errors import BadRequest
from recordings_service.fields import is_text, optional_text
from recordings_service.pagination import decode_cursor, page_of
from recordings_service.services import Services
from storage import evaluation_store
from storage.evaluation_store import Evaluation, EvaluationFilter
from storage.limits import IDENTIFIER

PURPOSE = "quality_review"
COMMENT = 2000


def evaluation_json(e: Evaluation) -> dict[str, Any]:
    return {"id": e.id, "recording_id": e.recording_id, "agent_id": e.agent_id,
            "form": e.form, "form_version": e.form_version, "evaluator": e.evaluator,
            "score": e.score, "critical_failed": list(e.critical_failed),
            "answers": e.answers, "notes": e.notes,
            "call_started_at": rfc3339(e.call_started_at), "created_at": rfc3339(e.created_at)}


async def evaluate(services: Services, actor: Actor, origin: Origin, recording_id: str,
                   body: dict[str, Any]) -> Evaluation:
    form = services.config.quality_forms.get(str(body.get("form", "")))
    if form is None:
        raise BadRequest("invalid_evaluation", "form must be one of "
                         + ", ".join(sorted(services.config.quality_forms)))
    scored = quality_forms.score(form, body.get("answers"))
    comment = body.get("comment")
    if comment is not None and not is_text(comment, COMMENT):
        raise BadRequest("invalid_evaluation", f"comment is text of at most {COMMENT} "
                                               f"characters")
    evaluation_id = "eval_" + secrets.token_urlsafe(12)
    rec = await access.authorize_audio(
        services, actor, origin, "evaluation_add", recording_id, PURPOSE,
        {"evaluation_id": evaluation_id, "form": form.name, "form_version": form.version,
         "score": scored.score})
    notes = dict(scored.texts)
    if comment and comment.strip():
        notes["comment"] = comment.strip()
    evaluation = Evaluation(
        evaluation_id, rec.id, rec.agent_id, form.name, form.version, actor.name,
        scored.score, scored.critical_failed, scored.answers, notes or None,
        rec.started_at, services.clock())
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
    """An agent's evaluations, newest first, and per form how many and their average."""
    agent = optional_text(agent_id, "agent_id", IDENTIFIER, "invalid_query")
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
