"""Idempotency-Key on ingest, trigger and resume: a retry gets the first answer and starts nothing new."""

from __future__ import annotations

import asyncio

from tests.api.conftest import exception_body


async def run_count(api) -> int:
    _, page, _ = await api.call("GET", "/api/v1/runs?limit=500")
    return len(page["items"])


async def test_a_retried_ingest_gets_the_first_answer_and_starts_one_run(api):
    body = exception_body()
    first = await api.call("POST", "/api/v1/exceptions", json=body, headers={"Idempotency-Key": "ing-1"})
    second = await api.call("POST", "/api/v1/exceptions", json=body, headers={"Idempotency-Key": "ing-1"})
    assert first[0] == second[0] == 202
    assert first[1] == second[1]
    assert second[2].get("Idempotent-Replayed") == "true"
    await api.settle()
    assert await run_count(api) == 1


async def test_the_same_key_with_a_different_body_is_422(api):
    await api.call("POST", "/api/v1/exceptions", json=exception_body(), headers={"Idempotency-Key": "ing-2"})
    status, body, _ = await api.call(
        "POST", "/api/v1/exceptions", json=exception_body(amount="43.00"), headers={"Idempotency-Key": "ing-2"}
    )
    assert status == 422 and body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await run_count(api) == 1


async def test_concurrent_requests_with_one_key_start_one_run(api):
    body = exception_body()
    answers = await asyncio.gather(*(
        api.call("POST", "/api/v1/exceptions", json=body, headers={"Idempotency-Key": "burst"}) for _ in range(8)
    ))
    assert {status for status, _, _ in answers} == {202}
    assert len({answer["run_id"] for _, answer, _ in answers}) == 1
    await api.settle()
    assert await run_count(api) == 1


async def test_keys_belong_to_a_tenant(api, other_tenant):
    body = exception_body()
    _, mine, _ = await api.call("POST", "/api/v1/exceptions", json=body, headers={"Idempotency-Key": "shared"})
    _, theirs, _ = await other_tenant.call(
        "POST", "/api/v1/exceptions", json=body, headers={"Idempotency-Key": "shared"}
    )
    assert mine["run_id"] != theirs["run_id"]


async def test_a_retried_resume_gets_202_again_not_409(api, approver, ingest):
    run_id = await ingest(amount="9000.00")
    await api.settle()
    path = f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume"
    body = {"payload": {"decision": "approve"}}
    first = await approver.call("POST", path, json=body, headers={"Idempotency-Key": "res-1"})
    await api.settle()
    second = await approver.call("POST", path, json=body, headers={"Idempotency-Key": "res-1"})
    assert first[0] == second[0] == 202 and first[1] == second[1]
    other = await approver.call("POST", path, json={"payload": {"decision": "reject", "reason": "x"}},
                           headers={"Idempotency-Key": "res-1"})
    assert other[0] == 422


async def test_a_refused_request_is_not_remembered(api):
    bad = exception_body(amount="lots")
    status, _, _ = await api.call("POST", "/api/v1/exceptions", json=bad, headers={"Idempotency-Key": "fix-me"})
    assert status == 400
    good = exception_body()
    status, _, _ = await api.call("POST", "/api/v1/exceptions", json=good, headers={"Idempotency-Key": "fix-me"})
    assert status == 202


async def test_a_retried_trigger_starts_one_run(api):
    body = {"payload": exception_body()}
    path = "/api/v1/workflows/exception_pipeline/trigger"
    first = await api.call("POST", path, json=body, headers={"Idempotency-Key": "trig-1"})
    second = await api.call("POST", path, json=body, headers={"Idempotency-Key": "trig-1"})
    assert first[0] == second[0] == 202 and first[1] == second[1]
    assert await run_count(api) == 1
