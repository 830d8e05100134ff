"""Scorecards through HTTP: forms as configured, a call scored by the service for quality
review, an agent's evaluations with averages, and the score kept past the call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recordings_service.config import load_config
from recordings_service.errors import ConfigError
from tests.audio import wav_tone
from tests.conftest import Api

GOOD = {"greeting": True, "identity": True, "need": 5, "resolution": 4, "courtesy": 3,
        "disclosures": True, "notes": "kind, but promised a callback without logging it"}


async def _score(api: Api, rid: str, answers: dict[str, Any], role: str = "supervisor",
                 form: str = "standard", **more: Any) -> tuple[int, Any]:
    return await api.call("POST", f"/v1/recordings/{rid}/evaluations",
                          {"form": form, "answers": answers, **more}, role=role)


async def test_the_shipped_standard_form_is_listed_with_its_questions(api: Api) -> None:
    status, body = await api.call("GET", "/v1/quality/forms", role="supervisor")
    assert status == 200
    [standard] = [f for f in body["items"] if f["name"] == "standard"]
    kinds = {q["id"]: (q["kind"], q["weight"], q["critical"]) for q in standard["questions"]}
    assert kinds["identity"] == ("yes_no", 2.0, True)
    assert kinds["resolution"] == ("scale", 3.0, False)
    assert kinds["notes"] == ("text", 0.0, False)


async def test_a_supervisor_scores_a_call_and_the_service_computes_it(api: Api) -> None:
    rec = await api.uploaded(wav_tone(2), call_id="q-1", agent_id="A-7", customer_id="C-q",
                             purposes=["quality_review", "training"])
    status, done = await _score(api, rec["id"], GOOD, comment="good call overall")
    assert status == 201
    # Weighted: 1 + 2 + 2*1 + 3*0.75 + 1*0.5 + 1 of 10.
    assert (done["score"], done["form_version"], done["agent_id"]) == (87.5, 1, "A-7")
    assert done["notes"] == {"notes": GOOD["notes"], "comment": "good call overall"}
    api.clock.advance(seconds=60)
    status, failed = await _score(api, rec["id"], GOOD | {"identity": False})
    assert (failed["score"], failed["critical_failed"]) == (0.0, ["identity"])
    # Audited as a quality-review access with the score, never the text answers.
    entries = await api.audit(recording_id=rec["id"], action="evaluation_add")
    assert [(e["purpose"], e["detail"]["score"]) for e in entries] == [
        ("quality_review", 87.5), ("quality_review", 0.0)]
    assert GOOD["notes"] not in json.dumps(await api.audit(recording_id=rec["id"]))

    status, body = await api.call("GET", "/v1/evaluations?agent_id=A-7", role="supervisor")
    assert status == 200 and [e["score"] for e in body["items"]] == [0.0, 87.5]
    assert body["averages"] == {"standard": {"count": 2, "average": 43.8}}

    # Erased: the scores stay as the agent's record, without what was said about the call.
    status, _ = await api.call("POST", "/v1/subjects/C-q/erasure", {"reason": "asked"})
    assert status == 200
    _, body = await api.call("GET", "/v1/evaluations?agent_id=A-7", role="compliance")
    assert [(e["score"], e["notes"]) for e in body["items"]] == [(0.0, None), (87.5, None)]


@pytest.mark.parametrize("answers", [
    {}, GOOD | {"need": 6}, GOOD | {"need": True}, GOOD | {"greeting": 1},
    GOOD | {"unknown": True}, GOOD | {"notes": 5}, GOOD | {"notes": "x" * 2001}, [1, 2]])
async def test_an_evaluation_that_does_not_fit_its_form_is_refused(
        api: Api, answers: Any) -> None:
    rec = await api.uploaded(wav_tone(1), call_id="q-bad", purposes=["quality_review"])
    status, problem = await _score(api, rec["id"], answers)
    assert (status, problem["reason"]) == (400, "invalid_evaluation")
    status, problem = await _score(api, rec["id"], GOOD, form="nosuch")
    assert (status, problem["reason"]) == (400, "invalid_evaluation")


async def test_scoring_needs_quality_review_allowed_on_the_call(api: Api) -> None:
    rec = await api.uploaded(wav_tone(1), call_id="q-no", purposes=["training"])
    status, _ = await _score(api, rec["id"], GOOD)
    assert status == 403
    status, _ = await _score(api, rec["id"], GOOD, role="compliance")
    assert status == 403


def test_a_misconfigured_form_is_refused_at_start(tmp_path: Any) -> None:
    for bad in ('questions = [{ id = "a", text = "t", kind = "essay", weight = 1 }]',
                'questions = [{ id = "a", text = "t", kind = "scale", weight = 1, '
                'critical = true }]',
                'questions = [{ id = "a", text = "t", kind = "text", weight = 0 }]',
                'questions = []'):
        path = tmp_path / "r.toml"
        path.write_text(f'[quality.forms.sales]\ntitle = "Sales"\nversion = 1\n{bad}\n')
        with pytest.raises(ConfigError):
            load_config(path, environ={}, data_dir=str(tmp_path / "d"))
    path = tmp_path / "ok.toml"
    path.write_text('[quality.forms.sales]\ntitle = "Sales"\nversion = 3\n'
                    'questions = [{ id = "offer", text = "Made the offer", kind = "yes_no" }]\n')
    forms = load_config(path, environ={}, data_dir=str(tmp_path / "d")).quality_forms
    assert sorted(forms) == ["sales", "standard"] and forms["sales"].version == 3
