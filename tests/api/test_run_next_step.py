"""Seed 003's run-next-step contract: execute and dryRun, schemaVersion and requestId, strict
input, 404/401/409 with the contract's extra fields."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from api.keys import DB, PIPELINE
from store.records import EventDraft, RunRecord, RunWrite
from store.writer import write_batch
from tests.api.conftest import exception_body

SCHEMA = "loop.runNextStep.v1"


async def a_received_run(api, run_id: str = "run_0000000000000000000000recv") -> str:
    """A run recorded but not yet advanced, as one is after a crash until a worker takes it."""
    now = datetime.now(UTC)
    body = exception_body()
    run = RunRecord(
        id=run_id, tenant_id="acme", workflow_id="exception_pipeline", status="received", trigger_type="api",
        trigger_ref=None, started_by="user:ann", version=1, last_seq=1, exception=body, state={},
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
    assert body["loopStatus"] == "completed" and body["nextStep"] is None
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "completed"


async def test_dry_run_changes_nothing_and_says_what_would_run(api):
    run_id = await a_received_run(api)
    status, body, _ = await api.call("POST", path(run_id), json={"mode": "dryRun"})
    assert status == 200 and body["stepExecuted"] is None and body["loopStatus"] == "active"
    assert body["message"] == "dry run: the triage stage would run next"
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "received" and run["last_seq"] == 1


async def test_an_empty_body_means_execute_and_a_paused_run_is_reported_not_moved(api, ingest):
    run_id = await ingest(amount="12000.00")
    response = await api.client.post(path(run_id), headers=api.headers())
    body = await response.json()
    assert response.status == 200 and body["loopStatus"] == "paused" and body["stepExecuted"] is None
    assert body["message"].startswith("run is paused at gate ops_lead_approval")
    assert body["nextStep"]["stepNumber"] == 1 and body["nextStep"]["status"] == "pending"


async def test_a_finished_run_reports_completed(api, ingest):
    run_id = await ingest()
    status, body, _ = await api.call("POST", path(run_id), json={})
    assert status == 200 and body["loopStatus"] == "completed" and body["nextStep"] is None
    assert body["message"] == "run has ended: completed"


async def test_bad_input_is_400_with_the_contract_fields(api, ingest):
    run_id = await ingest()
    for payload in ({"mode": "fast"}, {"mode": "execute", "extra": 1}):
        status, body, headers = await api.call("POST", path(run_id), json=payload)
        assert status == 400 and body["schemaVersion"] == SCHEMA and "timestamp" in body
        assert body["error"]["code"] == "VALIDATION_FAILED" and body["request_id"] == headers["X-Request-Id"]
    status, body, _ = await api.call("POST", path(run_id), data=b"{nope", headers={"Content-Type": "application/json"})
    assert status == 400 and body["schemaVersion"] == SCHEMA


async def test_unknown_run_is_404_and_no_token_is_401_with_the_contract_fields(api, client):
    status, body, _ = await api.call("POST", path("run_missing"), json={})
    assert status == 404 and body["error"]["code"] == "RUN_NOT_FOUND" and body["schemaVersion"] == SCHEMA
    response = await client.post(path("run_missing"), json={})
    body = await response.json()
    assert response.status == 401 and body["schemaVersion"] == SCHEMA


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
    status, conflict, _ = await api.call("POST", path(run_id), json={})
    release.set()
    committer.submit = submit
    assert (await first)[0] == 200
    assert status == 409
    assert conflict["error"]["code"] == "LOOP_CONFLICT" and conflict["schemaVersion"] == SCHEMA
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=triage.completed")
    assert len(events["items"]) == 1
