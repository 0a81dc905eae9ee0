"""Seed 003's run-next-step contract: execute and dryRun, schemaVersion and requestId, strict
input, absent optional fields left out, and every error status (400, 401, 403, 404, 409, 500)
in the contract's shape on top of our envelope."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from api.keys import DB, PIPELINE
from domain.run_state import new_state
from store.records import EventDraft, RunRecord, RunWrite
from store.writer import write_batch
from tests.api.conftest import Api, exception_body

SCHEMA = "loop.runNextStep.v1"


def assert_contract_error(body: dict, headers, code: str) -> None:
    """Seed 003's error fields, and our envelope's keys beside them."""
    assert body["schemaVersion"] == SCHEMA
    assert uuid.UUID(body["requestId"]) and body["requestId"] == body["request_id"] == headers["X-Request-Id"]
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert body["error"]["code"] == code and body["error"]["message"] and "details" in body["error"]


async def a_received_run(api, run_id: str = "run_0000000000000000000000recv") -> str:
    """A run recorded but not yet advanced, as one is after a crash until a worker takes it."""
    now = datetime.now(UTC)
    body = exception_body()
    run = RunRecord(
        id=run_id, tenant_id="acme", workflow_id="exception_pipeline", status="received", trigger_type="api",
        trigger_ref=None, started_by="user:ann", version=1, last_seq=1, exception=body, state=new_state(),
        sla_deadline=now + timedelta(hours=6), pause_expires_at=None, created_at=now, updated_at=now,
    )
    received = EventDraft(1, "run.received", "user:ann", {"exception": body}, None, now)
    [outcome] = await write_batch(api.app[DB], [RunWrite(run, True, [received])])
    assert isinstance(outcome, list)
    return run_id


def path(run_id: str) -> str:
    return f"/api/v1/runs/{run_id}/run-next-step"


async def test_execute_advances_a_waiting_active_run_and_reports_the_step(api):
    run_id = await a_received_run(api)
    status, body, headers = await api.call("POST", path(run_id), json={"mode": "execute"})
    assert status == 200
    assert body["schemaVersion"] == SCHEMA and body["runId"] == run_id
    assert uuid.UUID(body["requestId"]) and headers["X-Request-Id"] == body["requestId"]
    assert body["stepExecuted"]["stepNumber"] == 1 and body["stepExecuted"]["stepId"] == "hold-order"
    assert body["stepExecuted"]["status"] == "completed" and body["stepExecuted"]["durationMs"] >= 0
    assert body["loopStatus"] == "completed" and "nextStep" not in body
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "completed"


async def test_dry_run_changes_nothing_and_says_what_would_run(api):
    run_id = await a_received_run(api)
    status, body, _ = await api.call("POST", path(run_id), json={"mode": "dryRun"})
    assert status == 200 and body["loopStatus"] == "active"
    assert "stepExecuted" not in body and "nextStep" not in body and None not in body.values()
    assert body["message"] == "dry run: the triage stage would run next"
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "received" and run["last_seq"] == 1


async def test_an_empty_object_means_execute_and_a_paused_run_is_reported_not_moved(api, ingest):
    """The seed's "empty body" example sends ``{}``; no body at all is a 400 (issue 13)."""
    run_id = await ingest(amount="12000.00")
    response = await api.client.post(path(run_id), headers=api.headers())
    assert response.status == 400 and (await response.json())["error"]["details"][0]["field"] == "body"
    status, body, _ = await api.call("POST", path(run_id), json={})
    assert status == 200 and body["loopStatus"] == "paused" and "stepExecuted" not in body
    assert body["message"].startswith("run is paused at gate ops_lead_approval")
    assert body["nextStep"]["stepNumber"] == 1 and body["nextStep"]["status"] == "pending"
    assert None not in body["nextStep"].values()


async def test_a_finished_run_reports_completed(api, ingest):
    run_id = await ingest()
    status, body, _ = await api.call("POST", path(run_id), json={})
    assert status == 200 and body["loopStatus"] == "completed" and "nextStep" not in body
    assert body["message"] == "run has ended: completed"


async def test_bad_input_is_400_invalid_request_naming_the_field(api, ingest):
    run_id = await ingest()
    for payload, field in (({"mode": "fast"}, "body.mode"), ({"mode": "execute", "extra": 1}, "body.extra")):
        status, body, headers = await api.call("POST", path(run_id), json=payload)
        assert status == 400
        assert_contract_error(body, headers, "INVALID_REQUEST")
        assert body["error"]["details"][0]["field"] == field
    status, body, headers = await api.call("POST", path(run_id), data=b"{nope",
                                           headers={"Content-Type": "application/json"})
    assert status == 400
    assert_contract_error(body, headers, "INVALID_REQUEST")


async def test_no_token_is_401_in_the_contract_shape(client):
    response = await client.post(path("run_missing"), json={})
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_contract_error(await response.json(), response.headers, "UNAUTHORIZED")


async def test_a_role_without_runs_advance_is_403_in_the_contract_shape(api, client, app, token_for, ingest):
    run_id = await ingest()
    viewer = Api(client, app, token_for("acme", "val", ("viewer",)))
    status, body, headers = await viewer.call("POST", path(run_id), json={"mode": "dryRun"})
    assert status == 403
    assert_contract_error(body, headers, "FORBIDDEN")
    assert body["error"]["details"] == {"permission": "runs:advance"}


async def test_an_unknown_run_or_another_tenants_is_404_in_the_contract_shape(api, other_tenant, ingest):
    status, body, headers = await api.call("POST", path("run_missing"), json={})
    assert status == 404
    assert_contract_error(body, headers, "RUN_NOT_FOUND")
    run_id = await ingest()
    status, body, headers = await other_tenant.call("POST", path(run_id), json={})
    assert status == 404
    assert_contract_error(body, headers, "RUN_NOT_FOUND")


async def test_an_unexpected_failure_is_500_in_the_contract_shape_naming_no_internals(api, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(api.app[PIPELINE], "run_next_step", broken)
    status, body, headers = await api.call("POST", path("run_any"), json={})
    assert status == 500
    assert_contract_error(body, headers, "INTERNAL_ERROR")
    assert "hunter2" not in str(body)


async def test_other_routes_keep_the_plain_envelope(api):
    status, body, _ = await api.call("GET", "/api/v1/runs/run_missing")
    assert status == 404 and set(body) == {"error", "request_id"}


async def test_a_second_concurrent_execute_is_a_loop_conflict(api):
    run_id = await a_received_run(api)
    committer = api.app[PIPELINE].committer
    release, submit = asyncio.Event(), committer.submit

    async def held(write):  # the first execute stays in flight until the second has been answered
        await release.wait()
        return await submit(write)

    committer.submit = held
    first = asyncio.create_task(api.call("POST", path(run_id), json={}))
    for _ in range(1000):
        if run_id in api.app[PIPELINE]._advancing:
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("the first execute never started advancing the run")
    status, conflict, headers = await api.call("POST", path(run_id), json={})
    release.set()
    committer.submit = submit
    assert (await first)[0] == 200
    assert status == 409
    assert_contract_error(conflict, headers, "LOOP_CONFLICT")
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=triage.completed")
    assert len(events["items"]) == 1
