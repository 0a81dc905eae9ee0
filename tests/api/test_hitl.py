"""Paused runs: listed with their gate and schema, approved or rejected over HTTP, never resumed twice.
The answer's ``status`` says what the decision did (``resuming``, ``rejected``; ``approval_recorded`` is in
test_approval_rules)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import config_with

RESUME = "/api/v1/workflows/exception_pipeline/runs/{}/resume"
FAILS_AFTER_APPROVAL = """\
id: zz-fails-after-approval
name: Fails after approval
priority: 1000
match: {domain: payments, exception_type: "payment.failed"}
steps:
  - id: comment
    name: Comment without text (fails)
    action: add_comment
    on_failure: pause
"""


async def paused_run(api, ingest) -> str:
    run_id = await ingest(amount="18000.00", source_id="ch_big")
    await api.settle()
    return run_id


async def test_a_large_amount_pauses_and_is_listed_with_what_a_resumer_must_send(api, ingest):
    run_id = await paused_run(api, ingest)
    status, page, _ = await api.call("GET", "/api/v1/runs/pending-action")
    assert status == 200
    [item] = page["items"]
    assert item["run_id"] == run_id and item["status"] == "paused"
    assert item["gate"] == item["paused_step"] == "ops_lead_approval"
    assert "18000.00 USD is at or over 5000" in item["reason"]
    assert item["payload_schema"]["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert item["expires_at"] > item["requested_at"]
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["stage"] == "approval" and run["pause"]["gate"] == "ops_lead_approval"


async def test_approve_resumes_the_run_to_completion(api, ingest, approver):
    run_id = await paused_run(api, ingest)
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
    assert status == 202
    assert body == {"status": "resuming", "run_id": run_id, "workflow_id": "exception_pipeline",
                    "event_topic": "dashboard.hitl_resumed"}
    await api.settle()
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "completed"
    assert run["feedback"]["human_interventions"] == 1
    assert run["decisions"][0]["by"] == "user:lee"
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=dashboard.*")
    [resumed] = events["items"]
    assert resumed["actor"] == "user:lee" and resumed["payload"]["decision"] == "approve"
    _, pending, _ = await api.call("GET", "/api/v1/runs/pending-action")
    assert pending["items"] == []


async def test_reject_ends_the_run_as_rejected_with_feedback(api, ingest, approver):
    run_id = await paused_run(api, ingest)
    payload = {"decision": "reject", "reason": "customer already refunded by support"}
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": payload})
    assert status == 202
    assert body == {"status": "rejected", "run_id": run_id, "workflow_id": "exception_pipeline",
                    "event_topic": "dashboard.hitl_resumed"}
    await api.settle()
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "rejected"
    assert run["feedback"]["outcome"] == "rejected"
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events")
    assert [e["topic"] for e in events["items"]][-3:] == ["dashboard.hitl_resumed", "run.rejected", "feedback.recorded"]


async def test_an_approval_that_opens_the_gate_is_resuming_even_if_the_run_pauses_again(tmp_path: Path):
    config = config_with(tmp_path / "config", {"zz-fails-after-approval.yaml": FAILS_AFTER_APPROVAL})
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="s" * 40))
    async with TestClient(TestServer(app)) as client:
        def as_user(subject: str, role: str) -> Api:  # globex: acme's policy allows only the shipped playbooks
            return Api(client, app, app[TOKENS].mint(tenant="globex", subject=subject, roles=[role],
                                                     ttl=timedelta(hours=1)))

        starter, approver = as_user("ann", "admin"), as_user("lee", "approver")
        _, accepted, _ = await starter.call("POST", "/api/v1/exceptions", json=exception_body(amount="18000.00"))
        run_id = accepted["run_id"]
        status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
        assert status == 202 and body["status"] == "resuming"
        _, run, _ = await starter.call("GET", f"/api/v1/runs/{run_id}")
        assert run["status"] == "paused" and run["pause"]["gate"] == "step_failed"


async def test_a_payload_that_does_not_fit_leaves_the_run_paused_and_answerable(api, ingest, approver):
    run_id = await paused_run(api, ingest)
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "reject"}})
    assert status == 400
    assert body["error"]["details"][0]["field"] == "payload.reason"
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "maybe"}})
    assert status == 400 and body["error"]["details"][0]["field"] == "payload.decision"
    extra = {"payload": {"decision": "approve", "x": 1}}
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json=extra)
    assert status == 400 and body["error"]["details"][0]["field"] == "payload.x"
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "paused"
    status, _, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
    assert status == 202


async def test_a_second_resume_is_409_and_unknown_runs_are_404(api, ingest, approver):
    run_id = await paused_run(api, ingest)
    await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
    status, body, _ = await approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
    assert status == 409 and body["error"]["code"] == "RUN_NOT_PAUSED"
    unknown = RESUME.format("run_unknown")
    status, body, _ = await approver.call("POST", unknown, json={"payload": {"decision": "approve"}})
    assert status == 404 and body["error"]["code"] == "RUN_NOT_FOUND"


async def test_concurrent_resumes_of_one_pause_let_exactly_one_through(api, ingest, approver):
    run_id = await paused_run(api, ingest)
    answers = await asyncio.gather(*(
        approver.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}}) for _ in range(5)
    ))
    assert sorted(status for status, _, _ in answers) == [202, 409, 409, 409, 409]
    await api.settle()
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events?topic=dashboard.hitl_resumed")
    assert len(events["items"]) == 1


async def test_the_wrong_workflow_or_another_tenant_cannot_resume(api, other_tenant, ingest):
    run_id = await paused_run(api, ingest)
    status, body, _ = await api.call("POST", f"/api/v1/workflows/other/runs/{run_id}/resume",
                                     json={"payload": {"decision": "approve"}})
    assert status == 404 and body["error"]["code"] == "RUN_NOT_FOUND"
    status, body, _ = await other_tenant.call("POST", RESUME.format(run_id), json={"payload": {"decision": "approve"}})
    assert status == 404
    _, pending, _ = await other_tenant.call("GET", "/api/v1/runs/pending-action")
    assert pending["items"] == []
    _, run, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert run["status"] == "paused"
