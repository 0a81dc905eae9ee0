"""The real service: a run waits on a human step, a completion that breaks the contract is
refused, a good one finishes the run, and Feedback counts the human's part."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with
from tests.e2e.server import Client, ServerProcess

pytestmark = pytest.mark.e2e


async def test_a_human_step_completed_over_http_finishes_the_run(tmp_path):
    config = config_with(tmp_path / "config", {"test-review.yaml": REVIEW_PLAYBOOK}, [ACCOUNT_FLAGGED_RULE])
    server = ServerProcess(tmp_path / "data", config_dir=config)
    bearer = server.cli("token", "--tenant", "globex", "--sub", "kyc-analyst", "--role", "operator",
                        "--queue", "kyc-analysts").strip()
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            body = exception_body(domain="accounts", type="account.flagged", amount=None, currency=None)
            status, answer = await api.call("POST", "/api/v1/exceptions", json=body)
            assert status == 202 and answer["status"] == "waiting_for_input"
            run_id = answer["run_id"]
            _, playbook = await api.call("GET", f"/api/v1/runs/{run_id}/playbook")
            assert playbook["playbook"]["current_step"] == "review"

            path = f"/api/v1/playbook-runs/{run_id}/complete-step/review"
            status, refused = await api.call("POST", path, json={"outputs": {"decision": "clear"}})
            assert status == 400 and refused["error"]["details"][0]["field"] == "outputs.risk_score"
            status, done = await api.call("POST", path, json={"outputs": {"decision": "clear", "risk_score": 0.1}})
            assert status == 200 and done["data"]["run_status"] == "completed"

            _, run = await api.call("GET", f"/api/v1/runs/{run_id}")
            assert run["status"] == "completed"
            feedback = run["feedback"]
            assert feedback["human_interventions"] == 1 and feedback["completed_steps"] == 3
            assert feedback["total_steps"] == 3 and feedback["duration_seconds"] >= 0
            events = await api.events(run_id)
            assert [e["actor"] for e in events if e["topic"] == "playbook.step_completed"] == [
                "agent:resolution", "user:kyc-analyst", "agent:resolution",
            ]
    finally:
        server.stop()
