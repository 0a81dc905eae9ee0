"""The real service as a process: a schedule made over HTTP keeps firing on time, survives a kill,
and after the downtime fires once for the times it missed (coalesced and recorded), not once per
missed time. The only real waiting here is a few seconds of a 2-second interval."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.e2e.server import Client, ServerProcess

pytestmark = pytest.mark.e2e

SCHEDULE = {
    "id": "every-two-seconds", "workflow": "feedback_digest", "payload": {"window_hours": 1},
    "trigger": {"type": "interval", "seconds": 2}, "catch_up_seconds": 600,
}


async def _history(api: Client, kind: str) -> list[dict]:
    _, page = await api.call("GET", f"/api/v1/schedules/{SCHEDULE['id']}/history?kind={kind}&limit=500")
    return page["items"]


async def _wait_for(api: Client, kind: str, count: int, timeout: float = 20) -> list[dict]:
    for _ in range(int(timeout * 10)):
        items = await _history(api, kind)
        if len(items) >= count:
            return items
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} '{kind}' entries after {timeout}s: {await _history(api, kind)}")


async def test_a_schedule_fires_survives_a_kill_and_coalesces_what_it_missed(tmp_path):
    server = ServerProcess(tmp_path / "data")
    bearer = server.cli("token", "--tenant", "globex", "--sub", "ops", "--role", "operator").strip()
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            status, created = await api.call("POST", "/api/v1/schedules", json=SCHEDULE)
            assert status == 201, created
            assert len(created["next_fires"]) == 5
            fired = await _wait_for(api, "fired", 2)
            _, runs = await api.call("GET", f"/api/v1/runs?schedule_id={SCHEDULE['id']}")
            assert {r["trigger_type"] for r in runs["items"]} == {"scheduled"}
            assert {e["run_id"] for e in fired} <= {r["id"] for r in runs["items"]}

        server.kill()  # SIGKILL: no clean shutdown
        await asyncio.sleep(5)  # at least two fire times pass while the service is down
        await server.start()
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            [coalesced] = await _wait_for(api, "coalesced", 1)
            assert coalesced["detail"]["count"] >= 1
            catch_up = [e for e in await _history(api, "fired") if e["scheduled_for"] == coalesced["scheduled_for"]]
            assert len(catch_up) == 1, "the missed times fire once, not once each"
            _, schedule = await api.call("GET", f"/api/v1/schedules/{SCHEDULE['id']}")
            assert schedule["origin"] == "api" and schedule["next_fires"], "it survived the restart"
            await _wait_for(api, "fired", len(await _history(api, "fired")) + 1)  # and keeps firing
    finally:
        server.stop()
