"""SIGKILL in the middle of a burst of ingests and approvals: after a restart every run ends or
pauses, no acknowledged run is lost, no event is lost or repeated, and no stage or action ran twice."""

from __future__ import annotations

import asyncio
import collections

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.e2e.server import Client, ServerProcess, token

pytestmark = pytest.mark.e2e

BURST = 600
KILL_AFTER = 300
ONCE_PER_RUN = (
    "run.received", "triage.completed", "policy.evaluated", "run.paused", "playbook.started",
    "playbook.completed", "run.resolved", "feedback.recorded", "run.completed", "dashboard.hitl_resumed",
)


async def test_a_killed_server_recovers_every_run_exactly_once(tmp_path):
    server = ServerProcess(tmp_path / "data")
    await server.start()
    accepted: list[str] = []
    killed = asyncio.Event()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        api = Client(session, server.base, token())
        lead = Client(session, server.base, token(subject="lead"))

        async def send(i: int) -> None:
            body = exception_body(source_id=f"ch_{i}", amount="25000.00" if i % 10 == 0 else "30.00")
            try:
                status, answer = await api.call("POST", "/api/v1/exceptions", json=body)
            except (TimeoutError, aiohttp.ClientError):
                assert killed.is_set(), "requests may only fail once the server is killed"
                return
            assert status == 202
            accepted.append(answer["run_id"])
            if len(accepted) == KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()
            if answer["status"] == "paused" and not killed.is_set():
                resume = f"/api/v1/workflows/exception_pipeline/runs/{answer['run_id']}/resume"
                try:
                    status, _ = await lead.call("POST", resume, json={"payload": {"decision": "approve"}})
                    assert status == 202
                except (TimeoutError, aiohttp.ClientError):
                    assert killed.is_set()

        await asyncio.gather(*(send(i) for i in range(BURST)))
    assert killed.is_set()

    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, token())
            await api.settled()
            runs = {run["id"]: run for run in await api.all_runs()}
            assert set(accepted) <= set(runs), "a run answered with 202 was lost"
            for run_id, run in runs.items():
                assert run["status"] in {"completed", "rejected", "failed", "paused"}, run
                events = await api.events(run_id)
                assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), run_id
                topics = collections.Counter(e["topic"] for e in events)
                assert all(topics[t] <= 1 for t in ONCE_PER_RUN), (run_id, topics)
                steps = [e["payload"]["step_id"] for e in events if e["topic"] == "playbook.step_completed"]
                assert len(steps) == len(set(steps)), (run_id, steps)
                expected_end = {"completed": "run.completed", "paused": "run.paused"}[run["status"]]
                assert topics[expected_end] == 1
    finally:
        server.stop()
