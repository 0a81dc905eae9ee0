"""Seed 003's ``execute`` does real work over HTTP: a playbook run ``mode: stepwise`` waits with
its next step ready, and each ``execute`` takes exactly that step (``stepExecuted``), reports the
one after it (``nextStep``), and the last one completes the run; ``dryRun`` only looks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import PIPELINE, TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import STEPWISE_PLAYBOOK, config_with


@pytest.fixture
async def globex(tmp_path: Path) -> AsyncIterator[Api]:
    """A tenant whose policy approves every playbook (globex has no list of its own)."""
    config = config_with(tmp_path / "config", {"zz-stepwise.yaml": STEPWISE_PLAYBOOK})
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="s" * 40,
                              scheduler_enabled=False))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="globex", subject="ops", roles=["operator"], ttl=timedelta(hours=1))
        yield Api(client, app, token)


async def next_step(api: Api, run_id: str, mode: str) -> dict[str, Any]:
    status, body, _ = await api.call("POST", f"/api/v1/runs/{run_id}/run-next-step", json={"mode": mode})
    assert status == 200, body
    return body


async def test_each_execute_takes_the_next_step_and_the_last_completes_the_run(globex: Api) -> None:
    status, accepted, _ = await globex.call("POST", "/api/v1/exceptions", json=exception_body(amount="12.00"))
    assert status == 202, accepted
    run_id = accepted["run_id"]
    await globex.settle()
    _, run, _ = await globex.call("GET", f"/api/v1/runs/{run_id}")
    assert (run["status"], run["playbook_id"], run["playbook_version"]) == ("resolving", "zz-stepwise", 3)

    look = await next_step(globex, run_id, "dryRun")
    assert look["nextStep"]["stepId"] == "hold" and look["nextStep"]["status"] == "ready"
    assert "stepExecuted" not in look
    _, same, _ = await globex.call("GET", f"/api/v1/runs/{run_id}")
    assert same["last_seq"] == run["last_seq"], "a dry run wrote something"

    for step, then in (("hold", "assign"), ("assign", "note")):
        done = await next_step(globex, run_id, "execute")
        assert done["stepExecuted"]["stepId"] == step and done["stepExecuted"]["status"] == "completed"
        assert done["nextStep"]["stepId"] == then and done["loopStatus"] == "active"
        await globex.settle()  # no worker takes the next step by itself
        _, playbook, _ = await globex.call("GET", f"/api/v1/runs/{run_id}/playbook")
        statuses = {s["id"]: s["status"] for s in playbook["playbook"]["steps"]}
        assert statuses[then] == "ready" and statuses[step] == "completed"

    last = await next_step(globex, run_id, "execute")
    assert last["stepExecuted"]["stepId"] == "note" and "nextStep" not in last
    assert last["loopStatus"] == "completed"
    _, events, _ = await globex.call("GET", f"/api/v1/runs/{run_id}/events?limit=100")
    topics = [e["topic"] for e in events["items"]]
    assert topics.count("playbook.started") == 1 and topics.count("playbook.step_completed") == 3
    assert topics[-1] == "run.completed"
    note = next(e for e in events["items"]
                if e["topic"] == "playbook.step_completed" and e["payload"]["step_id"] == "note")
    assert note["payload"]["outputs"]["comment"] == "held, owned by queue:payments-ops"
    assert globex.app[PIPELINE].queued == 0
