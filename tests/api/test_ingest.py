"""Ingesting an exception: 202 with a run id, the run goes through all four agents, bad input is refused."""

from __future__ import annotations

import pytest

from tests.api.conftest import exception_body


async def test_ingest_answers_202_and_the_run_completes_through_all_agents(api, ingest):
    run_id = await ingest()
    await api.settle()

    status, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert status == 200
    assert run["status"] == "completed"
    assert run["triage"]["severity"] == "low" and run["triage"]["rule_id"] == "payment-card-declined"
    assert (run["policy"]["playbook_id"], run["policy"]["playbook_version"]) == ("payment-card-declined", 1)
    assert run["policy"]["requires_approval"] is False
    progress = run["playbook_progress"]
    assert progress["completed_steps"] == progress["total_steps"] == 3
    assert [s["status"] for s in progress["steps"]] == ["completed"] * 3
    assert progress["steps"][1]["outputs"]["target"] == "maria.lopez@example.com"
    assert run["feedback"]["completed_steps"] == 3
    assert run["feedback"]["human_interventions"] == 0

    status, page, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events")
    topics = [e["topic"] for e in page["items"]]
    assert topics == [
        "run.received", "triage.completed", "policy.evaluated", "playbook.started",
        "playbook.step_completed", "playbook.step_completed", "playbook.step_completed",
        "playbook.completed", "run.resolved", "feedback.recorded", "run.completed",
    ]
    assert [e["seq"] for e in page["items"]] == list(range(1, len(topics) + 1))
    assert page["items"][0]["actor"] == "user:ann"
    assert {e["actor"] for e in page["items"][1:]} <= {
        "agent:triage", "agent:policy", "agent:resolution", "agent:feedback"
    }


async def test_every_response_carries_a_request_id_and_echoes_a_valid_one(api):
    status, _, headers = await api.call("GET", "/api/v1/runs", headers={"X-Request-Id": "trace-123"})
    assert status == 200 and headers["X-Request-Id"] == "trace-123"
    status, body, headers = await api.call("GET", "/api/v1/runs/run_nope")
    assert status == 404 and body["request_id"] == headers["X-Request-Id"]


async def test_malformed_json_is_a_400_envelope(api):
    status, body, _ = await api.call(
        "POST", "/api/v1/exceptions", data=b'{"source": ', headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_FAILED"
    assert body["error"]["details"][0]["field"] == "body"
    assert set(body) == {"error", "request_id"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "lots"}, "body.amount"),
        ({"currency": "usd"}, "body.currency"),
        ({"domain": 7}, "body.domain"),
        ({"sla_deadline": "tomorrow"}, "body.sla_deadline"),
        ({"sla_deadline": "2026-11-25T10:00:00"}, "body.sla_deadline"),
        ({"surprise": True}, "body.surprise"),
        ({"amount": "-1"}, "body.amount"),
    ],
)
async def test_wrong_types_and_unknown_fields_are_named(api, overrides, field):
    status, body, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body(**overrides))
    assert status == 400
    assert field in [d["field"] for d in body["error"]["details"]]


async def test_a_missing_field_is_named_and_nothing_is_started(api):
    body = exception_body()
    del body["domain"]
    status, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
    assert status == 400 and answer["error"]["details"][0]["field"] == "body.domain"
    _, page, _ = await api.call("GET", "/api/v1/runs")
    assert page["items"] == []


async def test_a_body_that_is_not_an_object_is_refused(api):
    status, body, _ = await api.call("POST", "/api/v1/exceptions", json=[1, 2])
    assert status == 400 and body["error"]["details"][0]["field"] == "body"


async def test_unknown_routes_and_methods_use_the_envelope(api):
    status, body, _ = await api.call("GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "ROUTE_NOT_FOUND"
    status, body, _ = await api.call("DELETE", "/api/v1/exceptions")
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
