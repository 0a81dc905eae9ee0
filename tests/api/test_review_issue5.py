"""Review of the workflows-and-schedules change: defects found over HTTP, each with its test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api

SECRET = "test-secret-" + "x" * 32


@pytest.fixture
async def app(tmp_path: Path, clock: Any) -> AsyncIterator[web.Application]:
    yield create_app(Settings(data_dir=tmp_path / "data", jwt_secret=SECRET, scheduler_enabled=False), clock=clock)


@pytest.fixture
def globex(client: Any, app: web.Application, token_for: Any) -> Api:
    return Api(client, app, token_for("globex", "gil"))


def schedule(id: str = "hourly-digest", **fields: Any) -> dict[str, Any]:
    body = {"id": id, "workflow": "feedback_digest", "trigger": {"type": "cron", "expression": "0 * * * *"},
            "payload": {"window_hours": 1}}
    return {**body, **fields}


async def test_changing_a_paused_schedule_keeps_it_paused(globex: Api) -> None:
    """``paused`` lives on the record; the stored settings kept the value the schedule was
    created with, so any PATCH (a new description) resumed a schedule paused by hand."""
    assert (await globex.call("POST", "/api/v1/schedules", json=schedule()))[0] == 201
    status, paused, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/pause", json={"reason": "x"})
    assert status == 200 and paused["paused"]
    status, changed, _ = await globex.call("PATCH", "/api/v1/schedules/hourly-digest",
                                           json={"description": "new words"})
    assert status == 200, changed
    assert changed["paused"] is True and changed["next_fires"] == [] and changed["paused_reason"] == "x"


async def test_resumed_schedule_created_paused_stays_resumed_when_changed(globex: Api) -> None:
    assert (await globex.call("POST", "/api/v1/schedules", json=schedule(paused=True)))[0] == 201
    status, resumed, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/resume")
    assert status == 200 and not resumed["paused"]
    _, changed, _ = await globex.call("PATCH", "/api/v1/schedules/hourly-digest", json={"description": "d"})
    assert changed["paused"] is False and changed["next_fires"]


START_AT_OUT_OF_RANGE = [
    "9999-12-31T20:00:00-05:00",  # year 10000 in UTC
    "0001-01-01T00:30:00+01:00",  # year 0 in UTC
]


@pytest.mark.parametrize("start_at", START_AT_OUT_OF_RANGE)
async def test_a_start_out_of_range_in_utc_is_400_naming_it(globex: Api, start_at: str) -> None:
    status, body, _ = await globex.call("POST", "/api/v1/schedules", json=schedule(
        trigger={"type": "interval", "seconds": 3600, "start_at": start_at}))
    assert status == 400, body
    assert body["error"]["details"][0]["field"] == "body.trigger.start_at", body


async def test_a_backfill_from_the_first_day_of_the_calendar_is_not_a_500(globex: Api) -> None:
    assert (await globex.call("POST", "/api/v1/schedules", json=schedule(
        trigger={"type": "cron", "expression": "0 0 1 1 *"})))[0] == 201
    status, body, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/backfill", json={
        "start": "0001-01-01T00:00:00Z", "end": "1972-01-01T00:00:00Z"})
    assert status == 202, body
    assert body["times"] == ["1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z", "1972-01-01T00:00:00Z"]


async def test_a_last_fire_at_the_end_of_the_calendar_with_jitter_is_not_a_500(tmp_path: Path) -> None:
    """With the timer on, arming a fire near year 9999 plus its jitter overflowed."""
    app = create_app(Settings(data_dir=tmp_path / "data", jwt_secret=SECRET, scheduler_enabled=True))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="globex", subject="gil", roles=["admin"], ttl=timedelta(hours=1))
        globex = Api(client, app, token)
        status, created, _ = await globex.call("POST", "/api/v1/schedules", json=schedule(
            trigger={"type": "interval", "seconds": 3600, "start_at": "9999-12-31T23:59:59Z"}, jitter_seconds=3600))
        assert status == 201, created
        assert created["next_fires"] == ["9999-12-31T23:59:59Z"]
        for path in ("/api/v1/schedules", "/api/v1/schedules/hourly-digest"):
            status, body, _ = await globex.call("GET", path)
            assert status == 200, body
