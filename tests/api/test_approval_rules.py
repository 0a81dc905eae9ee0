"""A gate says who may decide it and how many must: deciders by role or queue, distinct
approvals, and the person who started the run may not approve it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import config_with

GATE = {"name": "two_person_rule", "approvals_required": 2, "deciders": ["role:approver", "queue:finance-leads"]}


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[Callable[..., Api]]:
    config = config_with(tmp_path / "config")
    policies = yaml.safe_load((config / "policies.yaml").read_text())
    policies["tenants"]["globex"] = {"gate": GATE}
    (config / "policies.yaml").write_text(yaml.safe_dump(policies))
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="g" * 40))
    async with TestClient(TestServer(app)) as client:
        def person(subject: str, *roles: str, queues: tuple[str, ...] = ()) -> Api:
            token = app[TOKENS].mint(tenant="globex", subject=subject, roles=list(roles) or ["viewer"],
                                     ttl=timedelta(hours=1), queues=list(queues))
            return Api(client, app, token)

        yield person


async def paused(starter: Api) -> str:
    _, answer, _ = await starter.call("POST", "/api/v1/exceptions", json=exception_body(amount="48000.00"))
    assert answer["status"] == "paused"
    return f"/api/v1/workflows/exception_pipeline/runs/{answer['run_id']}/resume"


APPROVE = {"payload": {"decision": "approve", "reason": "checked the ledger"}}


async def test_two_distinct_approvals_are_needed_and_each_is_an_event(people):
    starter = people("sam", "operator", "approver")
    resume = await paused(starter)
    run = resume.split("/runs/")[1].removesuffix("/resume")
    # the second decides through the gate's queue: admin alone is not among this gate's deciders
    first, second = people("ann", "approver"), people("fin", "admin", queues=("finance-leads",))

    status, body, _ = await first.call("POST", resume, json=APPROVE)
    assert status == 202 and body["status"] == "approval_recorded"
    status, body, _ = await first.call("POST", resume, json=APPROVE)
    assert status == 409 and body["error"]["code"] == "ALREADY_APPROVED"
    _, state, _ = await starter.call("GET", f"/api/v1/runs/{run}")
    assert state["status"] == "paused"
    # the dashboard shows where the gate stands and who may still decide it
    assert state["pause"]["approvals_required"] == 2 and [a["by"] for a in state["pause"]["approvals"]] == ["user:ann"]
    assert state["pause"]["deciders"] == GATE["deciders"]

    status, body, _ = await second.call("POST", resume, json=APPROVE)
    assert status == 202 and body["status"] == "resuming"
    _, events, _ = await starter.call("GET", f"/api/v1/runs/{run}/events")
    decisions = [(e["topic"], e["actor"]) for e in events["items"] if e["actor"].startswith("user:")][1:]
    assert decisions == [("run.approval_recorded", "user:ann"), ("dashboard.hitl_resumed", "user:fin")]
    assert events["items"][-1]["topic"] == "run.completed"
    resumed = next(e for e in events["items"] if e["topic"] == "dashboard.hitl_resumed")
    assert resumed["payload"]["approved_by"] == ["user:ann", "user:fin"]


async def test_the_starter_may_not_approve_but_may_reject(people):
    starter = people("sam", "operator", "approver")
    resume = await paused(starter)
    status, body, _ = await starter.call("POST", resume, json=APPROVE)
    assert status == 403 and "may not approve" in body["error"]["message"]
    status, body, _ = await starter.call("POST", resume, json={"payload": {"decision": "reject", "reason": "dup"}})
    assert status == 202 and body["status"] == "rejected"


async def test_only_the_gates_deciders_may_decide(people):
    resume = await paused(people("sam", "operator"))
    outsider = people("otto", "operator", queues=("payments-ops",))
    status, body, _ = await outsider.call("POST", resume, json=APPROVE)
    assert status == 403  # no runs:resume permission at all
    admin = people("ada", "admin")
    status, body, _ = await admin.call("POST", resume, json=APPROVE)
    assert status == 403 and body["error"]["details"]["deciders"] == GATE["deciders"]
    status, _, _ = await people("fin", "approver").call("POST", resume, json={"payload": {"decision": "reject"}})
    assert status == 400  # a rejection needs a reason, and a bad payload leaves the pause in place
    status, body, _ = await people("fin", "approver").call("POST", resume, json=APPROVE)
    assert status == 202 and body["status"] == "approval_recorded"
