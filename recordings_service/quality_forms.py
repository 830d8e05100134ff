"""Scorecards: the configured forms, and the score of a filled one.

The score is the weighted share of the best answers, 0 to 100: a yes counts 1 and a no 0,
a scale answer 1 to 5 counts (answer - 1) / 4; text answers are not scored. A "no" to a
critical question fails the form: its score is 0, whatever else was answered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recordings_service.errors import BadRequest, ConfigError
from recordings_service.fields import is_text

KINDS = ("yes_no", "scale", "text")
FORM_KEYS = frozenset({"title", "version", "questions"})
QUESTION_KEYS = frozenset({"id", "text", "kind", "weight", "critical"})
TEXT_ANSWER = 2000
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str
    weight: float
    critical: bool


@dataclass(frozen=True)
class QualityForm:
    name: str
    title: str
    version: int
    questions: tuple[Question, ...]

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "version": self.version,
                "questions": [q.__dict__ for q in self.questions]}


def _question(spec: Any, where: str) -> Question:
    if not isinstance(spec, Mapping) or set(spec) - QUESTION_KEYS:
        raise ConfigError(f"{where}: each question is a table of {sorted(QUESTION_KEYS)}")
    qid, text, kind = spec.get("id"), spec.get("text"), spec.get("kind")
    weight, critical = spec.get("weight", 1), spec.get("critical", False)
    if not isinstance(qid, str) or not _ID.fullmatch(qid):
        raise ConfigError(f"{where}: a question id is lower-case letters, digits and _")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: question {qid} needs a text")
    if kind not in KINDS:
        raise ConfigError(f"{where}: question {qid} kind must be one of {list(KINDS)}")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
        raise ConfigError(f"{where}: question {qid} weight must be a number, 0 or more")
    if not isinstance(critical, bool) or (critical and kind != "yes_no"):
        raise ConfigError(f"{where}: question {qid}: only a yes_no question is critical")
    return Question(qid, text.strip(), kind, float(weight) if kind != "text" else 0.0,
                    critical)


def parse_forms(raw: Mapping[str, Any]) -> dict[str, QualityForm]:
    forms: dict[str, QualityForm] = {}
    for name, spec in raw.get("quality", {}).get("forms", {}).items():
        where = f"[quality.forms.{name}]"
        if not _ID.fullmatch(name) or not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: a form is a table named in lower-case letters")
        unknown = sorted(set(spec) - FORM_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]} (known: {sorted(FORM_KEYS)})")
        title, version, questions = spec.get("title"), spec.get("version"), spec.get("questions")
        if not isinstance(title, str) or not title.strip():
            raise ConfigError(f"{where}: title must be a string")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"{where}: version must be an integer, 1 or more")
        if not isinstance(questions, list) or not questions:
            raise ConfigError(f"{where}: questions must be a non-empty list")
        parsed = tuple(_question(q, where) for q in questions)
        if len({q.id for q in parsed}) != len(parsed):
            raise ConfigError(f"{where}: question ids must differ")
        if not any(q.weight > 0 for q in parsed):
            raise ConfigError(f"{where}: at least one question must carry weight")
        forms[name] = QualityForm(name, title.strip(), version, parsed)
    return forms


@dataclass(frozen=True)
class Scored:
    score: float
    critical_failed: tuple[str, ...]
    answers: dict[str, bool | int]  # the scored answers
    texts: dict[str, str]  # the text answers: personal data about the call


def score(form: QualityForm, answers: Any) -> Scored:
    """Every scored question answered, in its kind; text answers optional."""
    if not isinstance(answers, Mapping):
        raise BadRequest("invalid_evaluation", "answers must be an object of question ids")
    unknown = sorted(set(answers) - {q.id for q in form.questions})
    if unknown:
        raise BadRequest("invalid_evaluation", f"{unknown[0][:40]!r} is not a question of "
                                               f"form {form.name}")
    scored: dict[str, bool | int] = {}
    texts: dict[str, str] = {}
    earned = possible = 0.0
    failed = []
    for q in form.questions:
        value = answers.get(q.id)
        if q.kind == "text":
            if value is not None:
                if not is_text(value, TEXT_ANSWER):
                    raise BadRequest("invalid_evaluation", f"{q.id} is text of at most "
                                                           f"{TEXT_ANSWER} characters")
                if value.strip():
                    texts[q.id] = value.strip()
            continue
        if q.kind == "yes_no" and not isinstance(value, bool):
            raise BadRequest("invalid_evaluation", f"{q.id} must be answered true or false")
        if q.kind == "scale" and (isinstance(value, bool) or value not in (1, 2, 3, 4, 5)):
            raise BadRequest("invalid_evaluation", f"{q.id} must be answered 1 to 5")
        assert isinstance(value, bool | int)
        scored[q.id] = value
        points = float(value) if q.kind == "yes_no" else (int(value) - 1) / 4
        earned += q.weight * points
        possible += q.weight
        if q.critical and value is False:
            failed.append(q.id)
    result = 0.0 if failed else round(100 * earned / possible, 1)
    return Scored(result, tuple(failed), scored, texts)
