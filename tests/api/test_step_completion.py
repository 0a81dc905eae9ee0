"""Completing human steps over HTTP (seed 000's contract) and reading a run's playbook status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with


@pytest.fixture
async def review_api(tmp_path: Path) -> AsyncIterator[Api]:
    config = config_with(tmp_path / "config", {"test-review.yaml": REVIEW_PLAYBOOK}, [ACCOUNT_FLAGGED_RULE])
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="k" * 40))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="globex", subject="ana", roles=["operator"], ttl=timedelta(hours=1),
                                 queues=["kyc-analysts"])
        yield Api(client, app, token)


async def waiting_run(api: Api) -> str:
    body = exception_body(domain="accounts", type="account.flagged", code="sanctions_hit", amount=None, currency=None)
    status, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
    assert status == 202 and answer["status"] == "waiting_for_input", answer
    return answer["run_id"]


def complete(run_id: str, step_id: str = "review") -> str:
    return f"/api/v1/playbook-runs/{run_id}/complete-step/{step_id}"


async def test_a_run_waits_on_the_human_step_and_shows_it(review_api):
    run_id = await waiting_run(review_api)
    status, body, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}/playbook")
    assert status == 200 and body["state"] == "in_progress"
    steps = {s["id"]: s for s in body["playbook"]["steps"]}
    assert [steps[s]["status"] for s in ("route", "review", "record")] == ["completed", "waiting_for_input", "pending"]
    assert steps["review"]["output_contract"]["decision"]["enum"] == ["clear", "close_account"]
    assert body["playbook"]["current_step"] == "review" and body["playbook"]["progress_percent"] == 33.3
    _, run, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "waiting_for_input" and run["paused_step"] == "review"


async def test_outputs_that_break_the_contract_are_named_and_change_nothing_then_good_ones_finish_the_run(review_api):
    run_id = await waiting_run(review_api)
    status, body, _ = await review_api.call("POST", complete(run_id), json={"outputs": {"risk_score": 0.2}})
    assert status == 400 and body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["message"] == "Output validation failed: Missing required output field: decision"
    assert body["error"]["details"][0]["field"] == "outputs.decision"
    status, body, _ = await review_api.call(
        "POST", complete(run_id), json={"outputs": {"decision": "maybe", "risk_score": "high"}}
    )
    assert status == 400
    assert [d["field"] for d in body["error"]["details"]] == ["outputs.decision", "outputs.risk_score"]
    too_risky = {"outputs": {"decision": "clear", "risk_score": 3}}
    status, body, _ = await review_api.call("POST", complete(run_id), json=too_risky)
    assert status == 400 and "at most 1" in body["error"]["details"][0]["message"]

    outputs = {"decision": "clear", "risk_score": 0.12, "notes": "false positive, name match only"}
    status, body, _ = await review_api.call(
        "POST", complete(run_id), json={"outputs": outputs, "ai_confidence": 0.9, "ai_insights": "matched DOB"}
    )
    assert status == 200 and body["success"] is True
    data = body["data"]
    assert (data["step_id"], data["step_sequence"], data["status"]) == ("review", 2, "completed")
    assert data["outputs"] == outputs and data["ai_confidence"] == 0.9
    assert data["run_status"] == "completed" and data["next_steps"] == [] and data["orchestrator_notified"] is True
    assert data["actual_duration_minutes"] >= 0

    _, events, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}/events")
    by_seq = {e["seq"]: e for e in events["items"]}
    completion = by_seq[data["completion_event_seq"]]
    assert completion["topic"] == "playbook.step_completed" and completion["actor"] == "user:ana"
    assert data["completion_event_id"] == f"{run_id}:{completion['seq']}"
    recorded = [e for e in events["items"] if e["payload"].get("step_id") == "record"]
    assert recorded[0]["payload"]["outputs"]["comment"] == "analyst decided clear"
    _, run, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["feedback"]["human_interventions"] == 1 and run["feedback"]["last_actor"] == "agent:resolution"
    assert run["feedback"]["completed_steps"] == 3


async def test_state_errors_follow_the_contract(review_api):
    run_id = await waiting_run(review_api)
    status, body, _ = await review_api.call("POST", complete(run_id, "record"), json={})
    assert status == 400 and body["error"]["code"] == "STEP_NOT_COMPLETABLE"
    assert body["error"]["message"] == (
        "Step cannot be completed from status: pending. Must be one of: in_progress, waiting_for_input, "
        "waiting_for_signal, ready"
    )
    status, body, _ = await review_api.call("POST", complete(run_id, "route"), json={})
    assert status == 409 and body["error"]["message"] == "Step is already in terminal state: completed"
    status, body, _ = await review_api.call("POST", complete(run_id, "nope"), json={})
    assert status == 404 and body["error"]["message"] == f"Step nope not found in run {run_id}"
    status, body, _ = await review_api.call("POST", complete("run_missing"), json={})
    assert status == 404 and body["error"]["code"] == "RUN_NOT_FOUND"
    status, body, _ = await review_api.call("POST", complete(run_id), json={"outputs": {}, "ai_confidence": 1.5})
    assert status == 400 and body["error"]["details"][0]["field"] == "body.ai_confidence"
    status, body, _ = await review_api.call("POST", complete(run_id), json={"output": {}})
    assert status == 400 and body["error"]["details"][0]["field"] == "body.output"


async def test_a_second_completion_is_409_and_a_retry_with_the_same_key_gets_the_first_answer(review_api):
    run_id = await waiting_run(review_api)
    body = {"outputs": {"decision": "close_account", "risk_score": 0.95}}
    first = await review_api.call("POST", complete(run_id), json=body, headers={"Idempotency-Key": "done-1"})
    again = await review_api.call("POST", complete(run_id), json=body, headers={"Idempotency-Key": "done-1"})
    assert first[0] == again[0] == 200 and first[1] == again[1]
    status, answer, _ = await review_api.call("POST", complete(run_id), json=body)
    assert status == 409 and answer["error"]["code"] == "STEP_ALREADY_TERMINAL"
    _, events, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}/events?topic=playbook.step_completed")
    assert [e["payload"]["step_id"] for e in events["items"]] == ["route", "review", "record"]


async def test_playbook_status_for_a_run_without_a_playbook(review_api):
    body = exception_body(domain="unknown", type="mystery.thing", amount=None, currency=None)
    _, answer, _ = await review_api.call("POST", "/api/v1/exceptions", json=body)
    status, status_body, _ = await review_api.call("GET", f"/api/v1/runs/{answer['run_id']}/playbook")
    assert status == 200 and status_body["state"] == "no_playbook" and status_body["playbook"] is None



URGENT = REVIEW_PLAYBOOK.replace("id: test-review", "id: test-review-urgent")
URGENT = URGENT.replace("priority: 1000", "priority: 2000")
URGENT = URGENT.replace('match: {domain: accounts, exception_type: "account.flagged"}',
                        'match: {domain: accounts, exception_type: "account.flagged", sla_minutes_remaining_lt: 30}')
URGENT = URGENT.replace("type: human\n    action: human_task", "action: add_comment\n    params: {text: urgent}")
URGENT = URGENT.replace("{steps.review.outputs.decision}", "fast-tracked")


async def test_recalculation_changes_the_assignment_only_when_a_better_playbook_matches(tmp_path, clock):
    playbooks = {"test-review.yaml": REVIEW_PLAYBOOK, "test-review-urgent.yaml": URGENT}
    config = config_with(tmp_path / "config", playbooks, [ACCOUNT_FLAGGED_RULE])
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="k" * 40), clock=clock)
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="globex", subject="ana", roles=["admin"], ttl=timedelta(hours=1))
        api = Api(client, app, token)
        body = exception_body(domain="accounts", type="account.flagged", amount=None, currency=None,
                              sla_deadline=(clock.now + timedelta(hours=2)).isoformat())
        _, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        run_id, path = answer["run_id"], f"/api/v1/runs/{answer['run_id']}/playbook/recalculate"
        assert answer["status"] == "waiting_for_input"

        status, result, _ = await api.call("POST", path, json={})
        assert status == 200 and result["changed"] is False and result["playbook_id"] == "test-review"
        _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=playbook.recalculated")
        assert events["items"] == []

        clock.advance(minutes=100)  # now 20 minutes before the SLA: the urgent playbook matches
        status, result, _ = await api.call("POST", path, json={})
        assert status == 200 and result["changed"] is True
        assert (result["previous_playbook_id"], result["playbook_id"]) == ("test-review", "test-review-urgent")
        assert result["run_status"] == "completed"
        _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=playbook.recalculated")
        [event] = events["items"]
        assert event["actor"] == "user:ana"
        assert event["payload"]["previous_step"] == "review" and event["payload"]["new_step"] == "route"
        assert event["payload"]["new_playbook_id"] == "test-review-urgent"

        status, result, _ = await api.call("POST", path, json={})
        assert status == 409 and result["error"]["code"] == "RUN_NOT_ACTIVE"
        status, result, _ = await api.call("POST", path, json={"force": True})
        assert status == 400 and result["error"]["details"][0]["field"] == "body.force"


async def test_a_step_assigned_to_another_queue_needs_the_override_permission(review_api):
    run_id = await waiting_run(review_api)
    outputs = {"outputs": {"decision": "clear", "risk_score": 0.2}}
    app = review_api.app
    outsider = Api(review_api.client, app, app[TOKENS].mint(
        tenant="globex", subject="otto", roles=["operator"], ttl=timedelta(hours=1), queues=["payments-ops"]))
    status, body, _ = await outsider.call("POST", complete(run_id), json=outputs)
    assert status == 403
    assert body["error"]["details"] == {"permission": "steps:override", "assignee": "queue:kyc-analysts"}
    _, run, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "waiting_for_input"

    supervisor = Api(review_api.client, app, app[TOKENS].mint(
        tenant="globex", subject="sue", roles=["admin"], ttl=timedelta(hours=1)))
    status, body, _ = await supervisor.call("POST", complete(run_id), json=outputs)
    assert status == 200
    _, events, _ = await review_api.call("GET", f"/api/v1/runs/{run_id}/events?topic=playbook.*")
    completed = [e for e in events["items"] if e["payload"].get("step_id") == "review"
                 and e["topic"] != "playbook.step_waiting"]
    assert [e["topic"] for e in completed] == ["playbook.step_completed", "playbook.step_overridden"]
    assert completed[0]["payload"]["override"] is True and completed[1]["actor"] == "user:sue"
    assert "assigned to queue:kyc-analysts" in completed[1]["payload"]["why"]
    assert body["data"]["completion_event_seq"] == completed[0]["seq"]


async def test_a_recalculation_onto_a_risky_playbook_goes_through_the_gate(tmp_path, clock):
    risky = URGENT.replace("params: {text: urgent}", "params: {text: urgent}\n    risky: true")
    config = config_with(tmp_path / "config", {"a.yaml": REVIEW_PLAYBOOK, "b.yaml": risky}, [ACCOUNT_FLAGGED_RULE])
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="k" * 40), clock=clock)
    async with TestClient(TestServer(app)) as client:
        api = Api(client, app, app[TOKENS].mint(tenant="globex", subject="ana", roles=["admin"],
                                                ttl=timedelta(hours=1)))
        body = exception_body(domain="accounts", type="account.flagged", amount=None, currency=None,
                              sla_deadline=(clock.now + timedelta(hours=2)).isoformat())
        _, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        assert answer["status"] == "waiting_for_input"
        clock.advance(minutes=100)
        status, result, _ = await api.call("POST", f"/api/v1/runs/{answer['run_id']}/playbook/recalculate", json={})
        assert status == 200 and result["playbook_id"] == "test-review-urgent"
        assert result["run_status"] == "paused"
        _, run, _ = await api.call("GET", f"/api/v1/runs/{answer['run_id']}")
        assert "risky step" in run["pause"]["reason"]
