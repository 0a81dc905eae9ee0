"""Runs stored by an older release (the untyped state of commit 6fe876f, before ``schema_version``)
are upgraded when read: paused ones can be resumed, waiting ones completed, a claimed tool call
recovered, and every one of them read over the API by this release.

The database is ``tests/fixtures/state_v1.db``, written by that commit's own code
(``tests/fixtures/make_state_v1_db.py``); its manifest says which run is in which situation."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import PIPELINE, RUNS, TOKENS
from config.settings import Settings
from domain.run_state import CURRENT_SCHEMA_VERSION, StepStatus
from tests.conftest import FakeClock

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "state_v1.json").read_text())
SITUATIONS = {name: s for name, s in MANIFEST["situations"].items() if not s.get("skipped")}
TENANT = MANIFEST["tenant"]


def run_of(name: str) -> str:
    return SITUATIONS[name]["run_id"]


class Upgraded:
    """The app of this release on a copy of the old database, and tokens to call it with."""

    def __init__(self, app: web.Application, client: TestClient, clock: FakeClock) -> None:
        self.app, self.client, self.clock = app, client, clock

    def token(self, subject: str, *roles: str, queues: tuple[str, ...] = ()) -> dict[str, str]:
        token = self.app[TOKENS].mint(tenant=TENANT, subject=subject, roles=list(roles), ttl=timedelta(hours=1),
                                      queues=list(queues))
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()

    async def events(self, run_id: str) -> list[dict[str, Any]]:
        status, body = await self.call("GET", f"/api/v1/runs/{run_id}/events?limit=500", self.token("ann", "admin"))
        assert status == 200, body
        return body["items"]


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[Upgraded]:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURES / "state_v1.db", data / "autopilot.db")
    clock = FakeClock(datetime.fromisoformat(MANIFEST["clock_end"]))
    settings = Settings(data_dir=data, config_dir=FIXTURES / "state_v1_config", scheduler_enabled=False,
                        jwt_secret="test-secret-" + "x" * 32)
    app = create_app(settings, clock=clock)
    async with TestClient(TestServer(app)) as client:
        await app[PIPELINE].drain()  # the claimed tool call is recovered at start-up
        yield Upgraded(app, client, clock)


def assert_gap_free(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_every_stored_run_reads_as_the_current_shape_over_the_api(upgraded: Upgraded) -> None:
    admin = upgraded.token("ann", "admin")
    for name in SITUATIONS:
        run_id = run_of(name)
        status, detail = await upgraded.call("GET", f"/api/v1/runs/{run_id}", admin)
        assert status == 200, (name, detail)
        stored = await upgraded.app[RUNS].get(TENANT, run_id)
        assert stored is not None and stored.state.schema_version == CURRENT_SCHEMA_VERSION
        if detail["workflow_id"] == "exception_pipeline":
            assert detail["triage"]["suggested_playbook_id"] is not None, name
            assert "@" not in detail["policy"]["playbook_id"], name
            assert isinstance(detail["policy"]["playbook_version"], int), name
            assert detail["playbook_id"] == detail["policy"]["playbook_id"]
        status, playbook = await upgraded.call("GET", f"/api/v1/runs/{run_id}/playbook", admin)
        assert status == 200, (name, playbook)

    status, completed = await upgraded.call("GET", f"/api/v1/runs/{run_of('4_completed')}", admin)
    assert completed["feedback"]["total_steps"] == 3
    assert completed["feedback"]["completed_steps"] == 3
    assert completed["feedback"]["playbook_id"] == completed["playbook_id"]

    status, escalated = await upgraded.call("GET", f"/api/v1/runs/{run_of('6_escalated_by_sla_sweep')}", admin)
    assert escalated["pause"]["deciders"] == SITUATIONS["6_escalated_by_sla_sweep"]["deciders"]
    assert escalated["pause"]["escalated"]["queue"] == "ops-escalations"
    assert escalated["severity"] == "medium"  # the sweep's raised severity survived the upgrade

    status, pending = await upgraded.call("GET", "/api/v1/runs/pending-action", admin)
    assert status == 200
    assert {item["run_id"] for item in pending["items"]} == {
        run_of("1_paused_at_approval_gate"), run_of("6_escalated_by_sla_sweep")}


async def test_a_run_paused_by_the_old_release_is_approved_and_completes(upgraded: Upgraded) -> None:
    run_id = run_of("1_paused_at_approval_gate")
    status, body = await upgraded.call(
        "POST", f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume", upgraded.token("lee", "approver"),
        {"payload": {"decision": "approve", "reason": "checked with the customer"}},
    )
    assert status == 202, body
    assert body["status"] == "resuming"
    await upgraded.app[PIPELINE].drain()
    status, run = await upgraded.call("GET", f"/api/v1/runs/{run_id}", upgraded.token("ann", "admin"))
    assert run["status"] == "completed", run
    events = await upgraded.events(run_id)
    assert_gap_free(events)
    topics = [e["topic"] for e in events]
    assert topics.index("run.paused") < topics.index("dashboard.hitl_resumed") < topics.index("run.completed")
    started = next(e for e in events if e["topic"] == "playbook.started")["payload"]
    feedback = next(e for e in events if e["topic"] == "feedback.recorded")["payload"]
    assert started["playbook_id"] == feedback["playbook_id"] == run["playbook_id"]


async def test_an_escalated_approval_is_decided_by_its_queue(upgraded: Upgraded) -> None:
    run_id = run_of("6_escalated_by_sla_sweep")
    path = f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume"
    reject = {"payload": {"decision": "reject", "reason": "duplicate of another claim"}}
    status, body = await upgraded.call("POST", path, upgraded.token("lee", "approver"), reject)
    assert status == 403, body  # the old release handed it to the escalation queue
    status, body = await upgraded.call("POST", path, upgraded.token("kim", "approver", queues=("ops-escalations",)),
                                       reject)
    assert status == 202, body
    assert body["status"] == "rejected"
    assert_gap_free(await upgraded.events(run_id))


async def test_a_step_waiting_since_the_old_release_is_completed(upgraded: Upgraded) -> None:
    situation = SITUATIONS["3_waiting_for_input"]
    run_id, step_id = situation["run_id"], situation["complete_step"]
    status, body = await upgraded.call(
        "POST", f"/api/v1/playbook-runs/{run_id}/complete-step/{step_id}", upgraded.token("ann", "admin"),
        {"outputs": situation["example_outputs"]},
    )
    assert status == 200, body
    assert body["data"]["step_id"] == step_id
    await upgraded.app[PIPELINE].drain()
    stored = await upgraded.app[RUNS].get(TENANT, run_id)
    assert stored is not None
    assert stored.state.steps[step_id].status == StepStatus.COMPLETED
    assert stored.status in ("completed", "waiting_for_input")
    assert_gap_free(await upgraded.events(run_id))


async def test_a_tool_call_claimed_by_the_old_release_is_not_repeated(upgraded: Upgraded) -> None:
    """The old process stopped between claiming the call and making it; the tool is not
    idempotent, so the new one must not call it again: the step fails as outcome unknown."""
    situation = SITUATIONS["9_tool_call_claimed"]
    stored = await upgraded.app[RUNS].get(TENANT, situation["run_id"])
    assert stored is not None
    step = stored.state.steps[situation["claimed_step"]]
    assert step.status == StepStatus.FAILED
    assert step.error is not None and "outcome is unknown" in step.error
    assert stored.state.pending_calls == []
    assert stored.status == "failed"
    assert_gap_free(await upgraded.events(situation["run_id"]))


async def test_the_old_job_run_reads_with_its_summary(upgraded: Upgraded) -> None:
    stored = await upgraded.app[RUNS].get(TENANT, run_of("8_job_run"))
    assert stored is not None
    assert stored.state.job == "sla_sweep"
    assert stored.state.summary is not None and stored.state.summary["counts"]["reassigned"] == 1
