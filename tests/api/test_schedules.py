"""Schedules over HTTP: create, read, change, delete, pause, resume, run now, backfill, history;
bad input named by field; fires visible as runs and in their timeline. The app's clock is a
fake one and its timer is off (``scheduler_enabled=False``): tests fire with ``tick()``. Two
tests turn the real timer on: one waits a few real seconds for an every-second schedule, one
arms a fire at the calendar's end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import SCHEDULES, TOKENS
from config.settings import Settings
from tests.api.conftest import Api

SECRET = "test-secret-" + "x" * 32


def at(hour: int, minute: int = 0) -> str:
    return datetime(2026, 11, 24, hour, minute, tzinfo=UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def app(tmp_path: Path, clock: Any) -> AsyncIterator[web.Application]:
    """Overrides the API conftest's app: the fake clock, and no timer."""
    yield create_app(Settings(data_dir=tmp_path / "data", jwt_secret=SECRET, scheduler_enabled=False), clock=clock)


@pytest.fixture
def globex(client: TestClient, app: web.Application, token_for: Any) -> Api:
    """A tenant with no schedules declared in config/schedules.yaml."""
    return Api(client, app, token_for("globex", "gil"))


def schedule(id: str = "hourly-digest", **fields: Any) -> dict[str, Any]:
    body = {"id": id, "workflow": "feedback_digest", "trigger": {"type": "cron", "expression": "0 * * * *"},
            "payload": {"window_hours": 1}}
    return {**body, **fields}


async def tick(api: Api) -> None:
    service = api.app[SCHEDULES]
    await service.tick()
    await asyncio.wait_for(service.drain(), timeout=30)
    await api.settle()


async def test_create_read_change_delete(globex: Api) -> None:
    status, created, headers = await globex.call("POST", "/api/v1/schedules", json=schedule(
        trigger={"type": "cron", "expression": "0 9 * * MON-FRI", "timezone": "Europe/Paris"},
        description="weekday mornings"))
    assert status == 201, created
    assert headers["Location"] == "/api/v1/schedules/hourly-digest"
    assert (created["workflow"], created["origin"], created["paused"], created["created_by"]) == (
        "feedback_digest", "api", False, "user:gil")
    assert created["next_fires"][:3] == [  # the clock says Tuesday 2026-11-24 09:00 UTC (10:00 in Paris)
        "2026-11-25T08:00:00Z", "2026-11-26T08:00:00Z", "2026-11-27T08:00:00Z"]
    assert len(created["next_fires"]) == 5

    status, one, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest")
    assert status == 200 and one == created
    _, listed, _ = await globex.call("GET", "/api/v1/schedules")
    assert [s["id"] for s in listed["items"]] == ["hourly-digest"]

    status, changed, _ = await globex.call("PATCH", "/api/v1/schedules/hourly-digest", json={
        "payload": {"window_hours": 6}, "overlap": "allow_all", "pause_after_failures": 5})
    assert status == 200, changed
    assert (changed["payload"]["window_hours"], changed["overlap"], changed["pause_after_failures"]) == (
        6, "allow_all", 5)
    assert changed["trigger"] == created["trigger"] and changed["version"] > created["version"]
    _, cleared, _ = await globex.call("PATCH", "/api/v1/schedules/hourly-digest", json={"pause_after_failures": None})
    assert cleared["pause_after_failures"] is None and cleared["overlap"] == "allow_all"

    status, _, _ = await globex.call("DELETE", "/api/v1/schedules/hourly-digest")
    assert status == 204
    assert (await globex.call("GET", "/api/v1/schedules/hourly-digest"))[0] == 404
    assert (await globex.call("GET", "/api/v1/schedules"))[1]["items"] == []
    status, history, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest/history")
    assert status == 404  # a deleted schedule is gone from the API, though its rows stay


async def test_a_duplicate_id_is_409_and_another_tenants_schedule_is_404(globex: Api, api: Api) -> None:
    assert (await globex.call("POST", "/api/v1/schedules", json=schedule()))[0] == 201
    status, body, _ = await globex.call("POST", "/api/v1/schedules", json=schedule())
    assert (status, body["error"]["code"]) == (409, "SCHEDULE_EXISTS")

    for method, path, body in [
        ("GET", "/api/v1/schedules/hourly-digest", None),
        ("PATCH", "/api/v1/schedules/hourly-digest", {"description": "mine now"}),
        ("POST", "/api/v1/schedules/hourly-digest/pause", {}),
        ("POST", "/api/v1/schedules/hourly-digest/run-now", None),
        ("GET", "/api/v1/schedules/hourly-digest/history", None),
        ("DELETE", "/api/v1/schedules/hourly-digest", None),
    ]:
        status, answer, _ = await api.call(method, path, json=body)
        assert status == 404, (method, path, answer)
    _, mine, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest")
    assert (mine["version"], mine["paused"], mine["description"]) == (1, False, "")
    assert "hourly-digest" not in [s["id"] for s in (await api.call("GET", "/api/v1/schedules"))[1]["items"]]
    # the same id in another tenant is that tenant's own schedule
    assert (await api.call("POST", "/api/v1/schedules", json=schedule()))[0] == 201


@pytest.mark.parametrize("body, field", [
    (schedule(trigger={"type": "cron", "expression": "0 25 * * *"}), "body.trigger.expression"),
    (schedule(trigger={"type": "cron", "expression": "every morning"}), "body.trigger.expression"),
    (schedule(trigger={"type": "cron", "expression": "0 9 * * *", "timezone": "Europe/Atlantis"}),
     "body.trigger.timezone"),
    (schedule(workflow="payroll_run"), "body.workflow"),
    (schedule(payload={"window_hours": "a day"}), "body.payload.window_hours"),
    (schedule(payload={"window_hours": 1, "windw": 2}), "body.payload.windw"),
    (schedule(workflow="ingest", payload={}), "body.payload.source"),
    (schedule(workflow="ingest", payload={"source": "acme_inbox"}), "body.payload.source"),  # acme's, not ours
    (schedule(trigger={"type": "cron", "expression": "0 0 31 2 *"}), "body.trigger.expression"),  # 31 February
    (schedule(id="Has Spaces"), "body.id"),
    (schedule(overlap="queue_everything"), "body.overlap"),
])
async def test_bad_input_is_400_naming_the_field(globex: Api, body: dict[str, Any], field: str) -> None:
    status, answer, _ = await globex.call("POST", "/api/v1/schedules", json=body)
    assert status == 400, answer
    assert field in [d["field"] for d in answer["error"]["details"]], answer
    assert (await globex.call("GET", "/api/v1/schedules"))[1]["items"] == []


@pytest.mark.parametrize("change, field", [
    ({"trigger": {"type": "cron", "expression": "*/0 * * * *"}}, "body.trigger.expression"),
    ({"trigger": {"type": "cron", "expression": "0 9 * * *", "timezone": "Nowhere/Special"}},
     "body.trigger.timezone"),
    ({"workflow": "payroll_run"}, "body.workflow"),
    ({"payload": {"window_hours": -3}}, "body.payload.window_hours"),
    ({"workflow": "sla_sweep"}, "body.payload.window_hours"),  # the old payload does not fit the new workflow
])
async def test_a_bad_change_is_400_naming_the_field_and_changes_nothing(globex: Api, change, field) -> None:
    _, before, _ = await globex.call("POST", "/api/v1/schedules", json=schedule())
    status, answer, _ = await globex.call("PATCH", "/api/v1/schedules/hourly-digest", json=change)
    assert status == 400, answer
    assert field in [d["field"] for d in answer["error"]["details"]], answer
    assert (await globex.call("GET", "/api/v1/schedules/hourly-digest"))[1] == before


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


async def test_a_fire_is_a_scheduled_run_in_the_runs_list_and_its_timeline(globex: Api, clock) -> None:
    await globex.call("POST", "/api/v1/schedules", json=schedule())
    await globex.call("POST", "/api/v1/schedules", json=schedule("other", trigger={"type": "interval",
                                                                                  "seconds": 7200}))
    clock.advance(hours=1)
    await tick(globex)

    status, page, _ = await globex.call("GET", "/api/v1/runs?schedule_id=hourly-digest")
    assert status == 200
    [run] = page["items"]
    assert (run["trigger_type"], run["workflow_id"]) == ("scheduled", "feedback_digest")
    _, detail, _ = await globex.call("GET", f"/api/v1/runs/{run['id']}")
    assert detail["trigger_ref"] == "hourly-digest"
    _, events, _ = await globex.call("GET", f"/api/v1/runs/{run['id']}/events")
    [fired] = [e for e in events["items"] if e["topic"] == "schedule.fired"]
    assert fired["payload"]["schedule_id"] == "hourly-digest"
    assert fired["payload"]["scheduled_for"] == "2026-11-24T10:00:00+00:00"
    assert (await globex.call("GET", "/api/v1/runs?schedule_id=other"))[1]["items"] == []

    _, one, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest")
    assert (one["last_run_id"], one["last_fire_at"], one["next_fires"][0]) == (
        run["id"], at(10), at(11))
    _, history, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest/history?kind=fired")
    assert [(h["kind"], h["run_id"], h["scheduled_for"]) for h in history["items"]] == [("fired", run["id"], at(10))]


async def test_pause_resume_and_run_now(globex: Api, clock) -> None:
    await globex.call("POST", "/api/v1/schedules", json=schedule())
    status, paused, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/pause",
                                          json={"reason": "quarter close"})
    assert status == 200
    assert (paused["paused"], paused["paused_reason"], paused["next_fires"]) == (True, "quarter close", [])
    clock.advance(hours=2)
    await tick(globex)
    assert (await globex.call("GET", "/api/v1/runs?schedule_id=hourly-digest"))[1]["items"] == []

    status, accepted, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/run-now")
    assert status == 202, accepted  # by hand, even while paused
    await tick(globex)
    _, page, _ = await globex.call("GET", "/api/v1/runs?schedule_id=hourly-digest")
    assert [r["id"] for r in page["items"]] == [accepted["run_id"]]
    assert page["items"][0]["status"] == "completed"
    status, again, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/run-now")
    assert status == 202 and again["run_id"] != accepted["run_id"]  # same instant, still a second run
    await tick(globex)

    status, resumed, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/resume")
    assert status == 200 and not resumed["paused"]
    assert resumed["next_fires"][0] == at(12)  # counting from now (11:00), not catching up 10:00 and 11:00
    _, history, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest/history")
    assert [h["kind"] for h in history["items"]] == ["resumed", "fired", "fired", "paused", "created"]
    assert history["items"][3]["detail"]["reason"] == "quarter close"
    assert history["items"][1]["actor"] == "user:gil"


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


async def test_backfill_fires_each_past_time_once(globex: Api, clock) -> None:
    await globex.call("POST", "/api/v1/schedules", json=schedule())
    clock.advance(hours=1)
    await tick(globex)  # 10:00 fires
    clock.advance(minutes=30)

    status, accepted, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/backfill",
                                            json={"start": at(7), "end": at(10)})
    assert status == 202, accepted
    assert (accepted["count"], accepted["times"]) == (4, [at(7), at(8), at(9), at(10)])
    await tick(globex)
    _, page, _ = await globex.call("GET", "/api/v1/runs?schedule_id=hourly-digest")
    assert len(page["items"]) == 4  # 07:00, 08:00, 09:00 backfilled; 10:00 already fired
    _, history, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest/history?kind=already_fired")
    assert [h["scheduled_for"] for h in history["items"]] == [at(10)]

    status, answer, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/backfill",
                                          json={"start": at(7), "end": at(12)})
    assert status == 400 and answer["error"]["details"][0]["field"] == "body.end"
    status, answer, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/backfill",
                                          json={"start": at(7)})
    assert status == 400 and answer["error"]["details"][0]["field"] == "body.end"


async def test_a_backfill_from_the_first_day_of_the_calendar_is_not_a_500(globex: Api) -> None:
    assert (await globex.call("POST", "/api/v1/schedules", json=schedule(
        trigger={"type": "cron", "expression": "0 0 1 1 *"})))[0] == 201
    status, body, _ = await globex.call("POST", "/api/v1/schedules/hourly-digest/backfill", json={
        "start": "0001-01-01T00:00:00Z", "end": "1972-01-01T00:00:00Z"})
    assert status == 202, body
    assert body["times"] == ["1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z", "1972-01-01T00:00:00Z"]


async def test_history_pages_newest_first(globex: Api) -> None:
    await globex.call("POST", "/api/v1/schedules", json=schedule())
    for n in range(4):
        await globex.call("PATCH", "/api/v1/schedules/hourly-digest", json={"description": f"v{n}"})
    _, first, _ = await globex.call("GET", "/api/v1/schedules/hourly-digest/history?limit=3")
    assert [h["kind"] for h in first["items"]] == ["updated"] * 3 and first["next_cursor"]
    page_two = f"/api/v1/schedules/hourly-digest/history?limit=3&cursor={first['next_cursor']}"
    _, rest, _ = await globex.call("GET", page_two)
    assert [h["kind"] for h in rest["items"]] == ["updated", "created"] and rest["next_cursor"] is None


async def test_the_declared_schedules_are_listed_for_their_tenant(api: Api) -> None:
    _, listed, _ = await api.call("GET", "/api/v1/schedules")
    assert {s["id"]: s["origin"] for s in listed["items"]} == {
        "daily-digest": "config", "inbox": "config", "sla-sweep": "config"}


async def test_a_real_timer_fires_an_every_second_schedule(tmp_path: Path) -> None:
    """The one test on real time: the timer is APScheduler's, and nothing here ticks by hand."""
    app = create_app(Settings(data_dir=tmp_path / "data", jwt_secret=SECRET, scheduler_enabled=True))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="globex", subject="gil", roles=["admin"], ttl=timedelta(hours=1))
        globex = Api(client, app, token)
        status, _, _ = await globex.call("POST", "/api/v1/schedules", json=schedule(
            "every-second", trigger={"type": "interval", "seconds": 1}))
        assert status == 201
        runs: list[dict[str, Any]] = []
        for _ in range(50):
            await asyncio.sleep(0.2)
            runs = (await globex.call("GET", "/api/v1/runs?schedule_id=every-second"))[1]["items"]
            if len(runs) >= 2:
                break
        assert len(runs) >= 2, "an every-second schedule did not fire twice within ten seconds"
        assert {r["trigger_type"] for r in runs} == {"scheduled"}


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
