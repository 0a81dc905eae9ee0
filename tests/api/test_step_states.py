"""A step can be completed only while its run waits for input, and a concurrent retry with the
same key gets the first answer (found in review)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import config_with

PARALLEL = """\
id: zz-parallel
name: Parallel
priority: 1000
match: {domain: payments, exception_type: "payment.failed"}
steps:
  - id: start
    name: Start
    action: notify
    params: {channel: slack, message: started}
  - id: review
    name: Human review
    type: human
    action: human_task
    assignee: "queue:ops"
    depends_on: [start]
    outputs: {ok: {type: boolean}}
"""
FAILING_BRANCH = """\
  - id: comment
    name: Comment without text (fails)
    action: add_comment
    depends_on: [start]
"""


@pytest.fixture
async def api_with(tmp_path: Path) -> AsyncIterator[Callable[[str], object]]:
    clients: list[TestClient] = []

    async def make(playbook: str) -> Api:
        config = config_with(tmp_path / f"config{len(clients)}", {"zz-parallel.yaml": playbook})
        app = create_app(Settings(data_dir=tmp_path / f"data{len(clients)}", config_dir=config, jwt_secret="s" * 40))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        token = app[TOKENS].mint(tenant="globex", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
        return Api(client, app, token)

    yield make
    for client in clients:
        await client.close()


async def started(api: Api) -> tuple[str, dict]:
    _, answer, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body())
    _, run, _ = await api.call("GET", f"/api/v1/runs/{answer['run_id']}")
    return answer["run_id"], run


async def test_a_failed_run_cannot_be_revived_by_completing_a_step(api_with):
    api = await api_with(PARALLEL + FAILING_BRANCH)
    run_id, run = await started(api)
    assert run["status"] == "failed" and run["feedback"]["outcome"] == "failed"
    assert {s["id"]: s["status"] for s in run["playbook_progress"]["steps"]}["review"] == "skipped"
    status, body, _ = await api.call("POST", f"/api/v1/playbook-runs/{run_id}/complete-step/review",
                                     json={"outputs": {"ok": True}})
    assert status == 409
    _, after, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert after["status"] == "failed"


async def test_a_step_failed_pause_is_not_lifted_by_completing_another_step(api_with):
    api = await api_with(PARALLEL + FAILING_BRANCH + "    on_failure: pause\n")
    run_id, run = await started(api)
    assert run["status"] == "paused" and run["pause"]["gate"] == "step_failed"
    status, body, _ = await api.call("POST", f"/api/v1/playbook-runs/{run_id}/complete-step/review",
                                     json={"outputs": {"ok": True}})
    assert status == 409 and body["error"]["code"] == "RUN_NOT_WAITING"
    _, after, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert after["status"] == "paused"
    resume = f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume"
    lead = Api(api.client, api.app, api.app[TOKENS].mint(
        tenant="globex", subject="lee", roles=["approver"], ttl=timedelta(hours=1)))
    status, _, _ = await lead.call("POST", resume, json={"payload": {"decision": "approve"}})
    assert status == 202
    _, after, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    steps = {s["id"]: s["status"] for s in after["playbook_progress"]["steps"]}
    assert after["status"] == "waiting_for_input" and steps["comment"] == "skipped"
    status, _, _ = await api.call("POST", f"/api/v1/playbook-runs/{run_id}/complete-step/review",
                                  json={"outputs": {"ok": True}})
    assert status == 200
    _, done, _ = await api.call("GET", f"/api/v1/runs/{run_id}")
    assert done["status"] == "completed"


async def test_a_concurrent_retry_of_a_completion_gets_the_first_answer(api_with):
    api = await api_with(PARALLEL)
    run_id, run = await started(api)
    assert run["status"] == "waiting_for_input"
    path = f"/api/v1/playbook-runs/{run_id}/complete-step/review"
    key = {"Idempotency-Key": "done-1"}
    first, second = await asyncio.gather(
        api.call("POST", path, json={"outputs": {"ok": True}}, headers=key),
        api.call("POST", path, json={"outputs": {"ok": True}}, headers=key),
    )
    assert (first[0], second[0]) == (200, 200) and first[1] == second[1]
