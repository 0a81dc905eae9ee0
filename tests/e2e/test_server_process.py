"""The real service as a process: ingest, pause, resume over HTTP; stop and start again without loss."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.e2e.server import Client, ServerProcess

pytestmark = pytest.mark.e2e


async def test_ingest_pause_resume_and_survive_a_restart(tmp_path):
    server = ServerProcess(tmp_path / "data")
    bearer = server.cli("token", "--tenant", "acme", "--sub", "ops", "--role", "operator").strip()
    lead_bearer = server.cli("token", "--tenant", "acme", "--sub", "ops-lead", "--role", "approver").strip()
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            lead = Client(session, server.base, lead_bearer)
            status, first = await api.call("POST", "/api/v1/exceptions", json=exception_body(amount="9100.00"))
            assert status == 202
            _, second = await api.call("POST", "/api/v1/exceptions", json=exception_body(amount="15000.00"))
            await api.settled()
            _, pending = await api.call("GET", "/api/v1/runs/pending-action")
            assert {item["run_id"] for item in pending["items"]} == {first["run_id"], second["run_id"]}

            resume = f"/api/v1/workflows/exception_pipeline/runs/{first['run_id']}/resume"
            status, _ = await api.call("POST", resume, json={"payload": {"decision": "approve"}})
            assert status == 403  # an operator may not decide a gate
            status, _ = await lead.call("POST", resume, json={"payload": {"decision": "approve"}})
            assert status == 202
            await api.settled()
            _, run = await api.call("GET", f"/api/v1/runs/{first['run_id']}")
            assert run["status"] == "completed" and run["decisions"][0]["by"] == "user:ops-lead"

        assert server.stop() == 0  # SIGTERM: a clean shutdown
        await server.start()
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            lead = Client(session, server.base, lead_bearer)
            _, run = await api.call("GET", f"/api/v1/runs/{second['run_id']}")
            assert run["status"] == "paused"
            resume = f"/api/v1/workflows/exception_pipeline/runs/{second['run_id']}/resume"
            status, _ = await lead.call("POST", resume, json={"payload": {"decision": "approve"}})
            assert status == 202
            await api.settled()
            _, run = await api.call("GET", f"/api/v1/runs/{second['run_id']}")
            assert run["status"] == "completed"
            _, again = await api.call("GET", f"/api/v1/runs/{first['run_id']}")
            assert again["status"] == "completed"
    finally:
        server.stop()
