"""The agent role: an agent sees and answers their own evaluations, hears their own
evaluated calls for training when the policy allows it, and nothing else."""

from __future__ import annotations

import re
from typing import Any

import pytest

from recordings_service.api.routes import ROUTES
from recordings_service.auth import create_token
from recordings_service.errors import BadRequest
from tests.audio import wav_tone
from tests.conftest import Api
from tests.integration.test_evaluations import GOOD


async def _evaluated(api: Api, call_id: str, agent_id: str = "A-7",
                     answers: dict[str, Any] | None = None) -> tuple[str, str]:
    rec = await api.uploaded(wav_tone(1), call_id=call_id, agent_id=agent_id,
                             purposes=["quality_review", "training", "legal_protection"])
    status, done = await api.call("POST", f"/v1/recordings/{rec['id']}/evaluations",
                                  {"form": "standard", "answers": answers or GOOD},
                                  role="supervisor")
    assert status == 201, done
    return rec["id"], done["id"]


async def test_an_agent_sees_only_their_own_evaluations(api: Api) -> None:
    await _evaluated(api, "a-own", "A-7")
    await _evaluated(api, "a-other", "A-8")
    status, mine = await api.call("GET", "/v1/evaluations", role="agent")
    assert status == 200 and [e["agent_id"] for e in mine["items"]] == ["A-7"]
    assert mine["averages"]["standard"]["count"] == 1
    status, problem = await api.call("GET", "/v1/evaluations?agent_id=A-8", role="agent")
    assert (status, problem["reason"]) == (403, "not_your_evaluations")
    _, theirs = await api.call("GET", "/v1/evaluations?agent_id=A-8", role="supervisor")
    status, problem = await api.call("GET", f"/v1/evaluations/{theirs['items'][0]['id']}",
                                     role="agent")
    assert status == 404  # someone else's evaluation does not exist for an agent
    status, _ = await api.call("POST", f"/v1/evaluations/{theirs['items'][0]['id']}/responses",
                               {"response": "acknowledge"}, role="agent")
    assert status == 404
    status, _ = await api.call("POST", "/v1/evaluations/eval_nosuch/responses",
                               {"response": "acknowledge"}, role="agent")
    assert status == 404
    denied = await api.audit(action="evaluation_read", outcome="denied")
    assert denied and denied[-1]["actor"] == "agent"


async def test_a_dispute_is_answered_by_a_revision_and_every_version_is_kept(
        api: Api) -> None:
    rid, eid = await _evaluated(api, "a-dispute", answers=GOOD | {"resolution": 2})
    status, problem = await api.call("POST", f"/v1/evaluations/{eid}/responses",
                                     {"response": "dispute"}, role="agent")
    assert (status, problem["reason"]) == (400, "invalid_evaluation")  # a dispute says why
    status, disputed = await api.call(
        "POST", f"/v1/evaluations/{eid}/responses",
        {"response": "dispute", "comment": "the customer's issue was solved at 03:10"},
        role="agent")
    assert (status, disputed["status"]) == (200, "disputed")
    # A reviewer cannot acknowledge for the agent; the agent cannot revise.
    status, problem = await api.call("POST", f"/v1/evaluations/{eid}/responses",
                                     {"response": "acknowledge"}, role="supervisor")
    assert (status, problem["reason"]) == (400, "invalid_response")
    status, _ = await api.call("POST", f"/v1/evaluations/{eid}/revisions",
                               {"answers": GOOD, "comment": "x"}, role="agent")
    assert status == 403

    api.clock.advance(minutes=5)
    status, revised = await api.call(
        "POST", f"/v1/evaluations/{eid}/revisions",
        {"answers": GOOD, "comment": "listened again: resolved"}, role="supervisor")
    assert status == 200
    assert (revised["version"], revised["status"], revised["score"]) == (2, "revised", 87.5)
    status, acknowledged = await api.call("POST", f"/v1/evaluations/{eid}/responses",
                                          {"response": "acknowledge"}, role="agent")
    assert (status, acknowledged["status"]) == (200, "acknowledged")
    status, problem = await api.call(
        "POST", f"/v1/evaluations/{eid}/responses",
        {"response": "dispute", "comment": "changed my mind"}, role="agent")
    assert (status, problem["reason"]) == (409, "evaluation_state")

    status, whole = await api.call("GET", f"/v1/evaluations/{eid}", role="agent")
    assert status == 200
    assert [(h["version"], h["kind"], h["actor"]) for h in whole["history"]] == [
        (1, "scored", "supervisor"), (1, "disputed", "agent"), (2, "revised", "supervisor"),
        (2, "acknowledged", "agent")]
    assert [h.get("score") for h in whole["history"]] == [72.5, None, 87.5, None]
    # The log says who answered what, never their words.
    entries = await api.audit(recording_id=rid)
    assert ("evaluation_response", "dispute") in [
        (e["action"], e["detail"].get("response")) for e in entries]
    assert "03:10" not in str(entries)

    # Erased: scores and versions stay as the agent's record, the words go.
    rec = await api.call("GET", f"/v1/recordings/{rid}", role="compliance")
    assert rec[0] == 200
    status, _ = await api.call("DELETE", f"/v1/recordings/{rid}", {"reason": "asked"})
    assert status == 200
    _, after = await api.call("GET", f"/v1/evaluations/{eid}", role="supervisor")
    assert [h["comment"] for h in after["history"]] == [None, None, None, None]
    assert [h.get("score") for h in after["history"]] == [72.5, None, 87.5, None]


async def test_a_reviewer_upholds_a_dispute(api: Api) -> None:
    _, eid = await _evaluated(api, "a-uphold")
    await api.call("POST", f"/v1/evaluations/{eid}/responses",
                   {"response": "dispute", "comment": "unfair"}, role="agent")
    status, upheld = await api.call("POST", f"/v1/evaluations/{eid}/responses",
                                    {"response": "uphold", "comment": "the form is clear"},
                                    role="supervisor")
    assert (status, upheld["status"]) == (200, "upheld")
    status, problem = await api.call("POST", f"/v1/evaluations/{eid}/responses",
                                     {"response": "uphold", "comment": "again"},
                                     role="compliance")
    assert (status, problem["reason"]) == (409, "evaluation_state")


async def test_an_agent_hears_their_own_evaluated_calls_for_training_only(api: Api) -> None:
    own, _ = await _evaluated(api, "a-hear")
    other, _ = await _evaluated(api, "a-hear-other", "A-8")
    unevaluated = (await api.uploaded(wav_tone(1), call_id="a-not-scored", agent_id="A-7",
                                      purposes=["training"]))["id"]
    assert (await api.audio(own, "training", "agent")).status == 200
    refused = await api.audio(own, "quality_review", "agent")
    assert (refused.status, (await refused.json())["reason"]) == (403, "purpose_not_allowed")
    for rid in (other, unevaluated):
        refused = await api.audio(rid, "training", "agent")
        assert (refused.status, (await refused.json())["reason"]) == (403, "not_your_call")
    status, link = await api.call("POST", f"/v1/recordings/{own}/playback-links",
                                  {"purpose": "training"}, role="agent")
    assert status == 201 and (await api.client.get(link["url"])).status == 200
    # Consent for training withdrawn: the agent's own call no longer plays.
    status, _ = await api.call("DELETE", f"/v1/recordings/{own}/purposes/training",
                               {"reason": "consent withdrawn"})
    assert status == 200
    assert (await api.audio(own, "training", "agent")).status == 403
    assert (await api.client.get(link["url"])).status == 403


async def test_the_agent_role_needs_an_agent_id_and_only_it_has_one(api: Api) -> None:
    database, now = api.services.database, api.clock()
    with pytest.raises(BadRequest) as missing:
        await create_token(database, "agent-x", ["agent"], now)
    assert missing.value.reason == "agent_id_required"
    with pytest.raises(BadRequest) as stray:
        await create_token(database, "sup-x", ["supervisor"], now, agent_id="A-1")
    assert stray.value.reason == "invalid_agent_id"
    status, me = await api.call("GET", "/v1/session", role="agent")
    assert (status, me["agent_id"], me["roles"]) == (200, "A-7", ["agent"])


async def test_an_agent_is_refused_every_route_that_does_not_name_the_role(api: Api) -> None:
    """The role x route matrix for the new role: nothing outside its routes succeeds, and
    within them only what is the agent's (the tests above)."""
    rec = await api.uploaded(wav_tone(1), call_id="a-matrix", agent_id="A-7")
    successes = []
    for route in ROUTES:
        if not route.roles or "agent" in route.roles:
            continue
        path = re.sub(r"{recording_id}", rec["id"], route.path)
        path = re.sub(r"{\w+}", "x", path)
        response = await api.client.request(route.method, path, json={},
                                            headers=api.auth("agent"))
        if response.status < 400:
            successes.append((route.method, route.path))
        elif response.status == 403:
            assert (await response.json())["reason"] == "missing_role", route.path
        else:
            raise AssertionError((route.method, route.path, response.status))
    assert successes == []


async def test_the_quality_report_counts_per_agent_queue_and_evaluator(api: Api) -> None:
    _, eid = await _evaluated(api, "r-1")
    await api.call("POST", f"/v1/evaluations/{eid}/responses",
                   {"response": "dispute", "comment": "no"}, role="agent")
    rec = await api.uploaded(wav_tone(1, frequency=330), call_id="r-2", agent_id="=A-9",
                             queue="billing", purposes=["quality_review"])
    status, _ = await api.call("POST", f"/v1/recordings/{rec['id']}/evaluations",
                               {"form": "standard", "answers": GOOD | {"identity": False}},
                               role="supervisor")
    assert status == 201
    api.clock.advance(minutes=1)
    status, report = await api.call("GET", "/v1/reports/quality", role="supervisor")
    assert status == 200
    assert [(r["key"], r["evaluations"], r["average"], r["disputed"])
            for r in report["agents"]] == [("=A-9", 1, 0.0, 0), ("A-7", 1, 87.5, 1)]
    assert [(r["key"], r["evaluations"], r["calls"]) for r in report["evaluators"]] == [
        ("supervisor", 2, 2)]
    assert [r["key"] for r in report["queues"]] == ["billing", None]
    response = await api.client.get("/v1/reports/quality?format=csv",
                                    headers=api.auth("supervisor"))
    assert response.status == 200 and response.content_type == "text/csv"
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("group,key,form,evaluations,average,disputed,calls")
    assert any(line.startswith("agents,'=A-9,standard,1,0.0,0,1") for line in lines)
    formats = [e["detail"]["format"] for e in await api.audit(action="quality_report")]
    assert formats == ["json", "csv"]
    status, problem = await api.call("GET", "/v1/reports/quality?from=2026-01-01T00:00:00Z"
                                     "&to=2025-01-01T00:00:00Z", role="supervisor")
    assert (status, problem["reason"]) == (400, "invalid_query")
    status, _ = await api.call("GET", "/v1/reports/quality", role="agent")
    assert status == 403
