"""The demo feed's sample exceptions are valid input and exercise the pipeline's paths, and the
shipped ``inbox`` schedule's first fire succeeds on a fresh data directory, with or without the
demo's sample file."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.exception_input import ExceptionIn
from api.app import create_app
from api.demo import demo_feed, sample_exception
from api.keys import SCHEDULES, SETTINGS, TOKENS
from config.settings import Settings
from tests.api.conftest import Api


async def test_every_sample_is_valid_and_the_samples_reach_several_playbooks_and_pauses(api):
    rng = random.Random(7)
    now = datetime.now(UTC)
    for _ in range(80):
        body = sample_exception(rng, now)
        ExceptionIn.model_validate(body)
        status, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        assert status == 202, answer
    _, page, _ = await api.call("GET", "/api/v1/runs?limit=500")
    statuses = {run["status"] for run in page["items"]}
    playbooks = {run["playbook_id"] for run in page["items"]}
    # Human and AI steps leave a run waiting_for_input; every other run completes or pauses for approval.
    assert statuses <= {"completed", "paused", "waiting_for_input"}
    assert {"completed", "paused", "waiting_for_input"} <= statuses
    assert len(playbooks - {None}) >= 5


async def fire_inbox(api: Api) -> dict[str, Any]:
    """Fire the shipped ``inbox`` schedule by hand and answer its run once it has ended."""
    status, accepted, _ = await api.call("POST", "/api/v1/schedules/inbox/run-now")
    assert status == 202, accepted
    await asyncio.wait_for(api.app[SCHEDULES].drain(), timeout=30)  # the run ended and was counted
    await api.settle()
    status, run, _ = await api.call("GET", f"/api/v1/runs/{accepted['run_id']}")
    assert status == 200, run
    _, log, _ = await api.call("GET", f"/api/v1/runs/{accepted['run_id']}/events?topic=workflow.completed")
    return {"status": run["status"], "error": run["error"], "summary": [e["payload"] for e in log["items"]]}


async def test_a_fresh_install_without_demo_data_fires_its_inbox_without_failing(api: Api) -> None:
    """``autopilot serve`` on a new data directory has no ``inbox/acme``: every fire of the
    shipped schedule failed, a minute apart, on a newcomer's first screen."""
    inbox = api.app[SETTINGS].data_dir / "inbox" / "acme"
    assert not inbox.exists()
    fired = await fire_inbox(api)
    assert fired["status"] == "completed", fired["error"]
    [summary] = fired["summary"]
    assert (summary["source"], summary["items_read"], summary["started"]) == ("acme_inbox", 0, 0)
    assert inbox.is_dir()
    _, schedule, _ = await api.call("GET", "/api/v1/schedules/inbox")
    assert schedule["consecutive_failures"] == 0


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Api]:
    """The app as ``./dev serve`` starts it: the demo feed on, in a new data directory."""
    app = create_app(Settings(data_dir=tmp_path / "demo-data", jwt_secret="test-secret-" + "x" * 32),
                     extra_contexts=[demo_feed(initial=1, every_seconds=3600, seed=3)])
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="acme", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
        yield Api(client, app, token)


async def test_the_demo_fills_its_inbox_and_the_inbox_schedule_ingests_it(demo: Api) -> None:
    fired = await fire_inbox(demo)
    assert fired["status"] == "completed", fired["error"]
    [summary] = fired["summary"]
    assert (summary["items_read"], summary["started"], summary["rejected"]) == (5, 5, 0)
