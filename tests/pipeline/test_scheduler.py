"""The schedule service on a real database, driven by ``tick()`` and a fake clock (no timer):
fires as runs, coalescing after downtime, overlap policies, pause and resume, pausing after
failures, backfill, run-now, jitter, declared schedules, and restarts (including a crash
between a fire's run and the schedule's save)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from config.schedules import DeclaredSchedule, ScheduleFile, ScheduleSettings
from config.settings import Settings
from domain.errors import ScheduleExists, ScheduleNotFound, ValidationFailed
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.feedback_digest import DigestParams
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobContext, JobKind
from pipeline.runtime import Runtime, open_runtime
from pipeline.scheduler import ScheduleService
from store.events import EventRepository
from store.records import RunRecord, ScheduleLogEntry
from store.schedules import ScheduleRepository

TENANT = "acme"
ACTOR = "user:ann"
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the clock fixture's start


def at(hour: int, minute: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def settings(**fields: Any) -> ScheduleSettings:
    fields.setdefault("workflow", "feedback_digest")
    fields.setdefault("trigger", {"type": "cron", "expression": "0 * * * *"})
    fields.setdefault("payload", {"window_hours": 1})
    return ScheduleSettings.model_validate(fields)


class Gate:
    """A job that waits until the test opens the gate: a fire that is still running."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0

    async def job(self, ctx: JobContext) -> dict[str, Any]:
        self.started += 1
        await self.open.wait()
        return {"waited": True}


@dataclass
class Node:
    """One process: the service's runtime (engine, job runner, schedules) on ``db``."""

    runtime: Runtime
    db: AsyncEngine
    running: AsyncExitStack

    @property
    def service(self) -> ScheduleService:
        return self.runtime.schedules

    @property
    def engine(self) -> PipelineEngine:
        return self.runtime.engine

    async def tick(self) -> None:
        await self.service.tick()

    async def settle(self) -> None:
        await asyncio.wait_for(self.service.drain(), timeout=30)
        await asyncio.wait_for(self.engine.drain(), timeout=30)

    async def runs(self, schedule_id: str, tenant: str = TENANT) -> list[RunRecord]:
        runs = await self.engine.runs.list_for(tenant, trigger_ref=schedule_id, limit=500)
        return sorted(runs, key=lambda r: r.id)

    async def history(self, schedule_id: str, tenant: str = TENANT) -> list[ScheduleLogEntry]:
        return list(reversed(await self.service.repo.history(tenant, schedule_id)))

    async def kinds(self, schedule_id: str) -> list[str]:
        return [e.kind for e in await self.history(schedule_id)]

    async def fired_for(self, run: RunRecord) -> dict[str, Any]:
        events = await EventRepository(self.db).for_run(run.tenant_id, run.id)
        return next(e.payload for e in events if e.topic == "schedule.fired")

    async def stop(self) -> None:
        """Stop the process (a second stop does nothing); one that cannot stop fails the test."""
        await asyncio.wait_for(self.running.aclose(), timeout=30)


@pytest.fixture
async def nodes(catalog: Catalog, clock: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a process as the service does, with the alarm off (tests ``tick``); each is stopped
    at the end. ``declared`` stands for ``config/schedules.yaml``."""
    made: list[Node] = []
    settings = Settings(data_dir=tmp_path / "data", engine_workers=2, scheduler_enabled=False)

    async def make(
        db: AsyncEngine, *, declared: Sequence[DeclaredSchedule] = (), kinds: dict[str, JobKind] = JOB_KINDS,
        jitter: Callable[[float], float] | None = None,
    ) -> Node:
        options: dict[str, Any] = {"jitter": jitter} if jitter else {}
        config = replace(catalog, schedules=ScheduleFile(schedules=list(declared)))
        running = AsyncExitStack()
        runtime = await running.enter_async_context(
            open_runtime(db, InProcessBus(), config, settings, clock=clock, job_kinds=kinds, **options))
        made.append(Node(runtime, db, running))
        return made[-1]

    yield make
    for node in made:
        await node.stop()


def gated(gate: Gate) -> dict[str, JobKind]:
    """The shipped job kinds, with ``feedback_digest`` replaced by one that waits on ``gate``."""
    return {**JOB_KINDS, "feedback_digest": JobKind(DigestParams, gate.job)}


# -- fires ---------------------------------------------------------------------------------------


async def test_each_fire_is_a_scheduled_run_carrying_the_schedule_id(db, nodes, clock) -> None:
    node = await nodes(db)
    created = await node.service.create(TENANT, "hourly", settings(), ACTOR)
    assert created.next_fire_at == at(10)

    clock.advance(minutes=59)
    await node.tick()
    assert await node.runs("hourly") == []  # not before its time

    clock.advance(minutes=1)
    await node.tick()
    await node.settle()
    await node.tick()  # the same moment again fires nothing more
    [run] = await node.runs("hourly")
    assert (run.trigger_type, run.trigger_ref, run.workflow_id, run.status) == (
        "scheduled", "hourly", "feedback_digest", "completed")
    assert run.started_by == "schedule:hourly"
    assert (await node.fired_for(run))["scheduled_for"] == at(10).isoformat()

    record = await node.service.get(TENANT, "hourly")
    assert (record.next_fire_at, record.last_fire_at, record.last_run_id) == (at(11), at(10), run.id)
    fired = [e for e in await node.history("hourly") if e.kind == "fired"]
    assert [(e.scheduled_for, e.run_id) for e in fired] == [(at(10), run.id)]

    clock.advance(hours=1)
    await node.tick()
    await node.settle()
    assert len(await node.runs("hourly")) == 2


async def test_a_schedule_fires_only_for_its_own_tenant(db, nodes, clock) -> None:
    node = await nodes(db)
    await node.service.create("globex", "hourly", settings(), ACTOR)
    await node.service.create(TENANT, "hourly", settings(paused=True), ACTOR)
    clock.advance(hours=1)
    await node.tick()
    await node.settle()
    assert len(await node.runs("hourly", "globex")) == 1
    assert await node.runs("hourly", TENANT) == []
    with pytest.raises(ScheduleNotFound):
        await node.service.get("initech", "hourly")


async def test_creating_an_existing_id_conflicts_and_a_bad_payload_names_its_field(db, nodes) -> None:
    node = await nodes(db)
    await node.service.create(TENANT, "hourly", settings(), ACTOR)
    with pytest.raises(ScheduleExists):
        await node.service.create(TENANT, "hourly", settings(), ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        await node.service.create(TENANT, "other", settings(payload={"window_hours": -1}), ACTOR)
    assert caught.value.details[0]["field"] == "body.payload.window_hours"
    with pytest.raises(ValidationFailed) as caught:
        await node.service.create(TENANT, "other", settings(workflow="no_such_flow"), ACTOR)
    assert caught.value.details[0]["field"] == "body.workflow"
    assert [r.id for r in await node.service.repo.list_for(TENANT)] == ["hourly"]


# -- downtime ------------------------------------------------------------------------------------


async def test_fires_missed_while_down_coalesce_into_one_and_older_ones_drop(db, nodes, clock) -> None:
    first = await nodes(db)
    await first.service.create(TENANT, "hourly", settings(catch_up_seconds=3 * 3600), ACTOR)
    await first.stop()

    clock.advance(hours=5, minutes=10)  # 14:10: 10:00 .. 14:00 were missed
    second = await nodes(db)  # start() catches up
    await second.settle()
    [run] = await second.runs("hourly")
    assert (await second.fired_for(run))["scheduled_for"] == at(14).isoformat()
    assert (await second.fired_for(run))["coalesced"] == 2

    log = {e.kind: e for e in await second.history("hourly")}
    assert log["coalesced"].detail["count"] == 2  # 12:00 and 13:00, inside the three-hour window
    assert (log["coalesced"].detail["first"], log["coalesced"].detail["last"]) == (
        at(12).isoformat(), at(13).isoformat())
    assert log["dropped"].detail["count"] == 2  # 10:00 and 11:00, too old
    assert log["dropped"].detail["first"] == at(10).isoformat()
    assert log["fired"].scheduled_for == at(14)
    assert (await second.service.get(TENANT, "hourly")).next_fire_at == at(15)

    await second.tick()
    await second.settle()
    assert len(await second.runs("hourly")) == 1


async def test_without_a_catch_up_window_missed_fires_are_dropped_not_run(db, nodes, clock) -> None:
    first = await nodes(db)
    await first.service.create(TENANT, "hourly", settings(catch_up_seconds=0), ACTOR)
    await first.stop()
    clock.advance(hours=3, minutes=30)
    second = await nodes(db)
    await second.settle()
    assert await second.runs("hourly") == []
    [dropped] = [e for e in await second.history("hourly") if e.kind == "dropped"]
    assert dropped.detail["count"] == 3
    assert (await second.service.get(TENANT, "hourly")).next_fire_at == at(13)


# -- overlap -------------------------------------------------------------------------------------


async def test_skip_drops_a_fire_while_the_last_one_runs_and_records_it(db, nodes, clock) -> None:
    gate = Gate()
    node = await nodes(db, kinds=gated(gate))
    await node.service.create(TENANT, "minutely", settings(trigger={"type": "cron", "expression": "* * * * *"}), ACTOR)
    clock.advance(minutes=1)
    await node.tick()
    clock.advance(minutes=1)
    await node.tick()
    assert node.service.busy(TENANT, "minutely") == 1
    [skipped] = [e for e in await node.history("minutely") if e.kind == "skipped"]
    assert skipped.scheduled_for == START + timedelta(minutes=2)
    assert "still running" in skipped.detail["reason"]
    record = await node.service.get(TENANT, "minutely")
    assert record.last_fire_at == START + timedelta(minutes=1)  # the skipped time did not fire
    assert record.next_fire_at == START + timedelta(minutes=3)

    gate.open.set()
    await node.settle()
    clock.advance(minutes=1)
    await node.tick()
    await node.settle()
    runs = await node.runs("minutely")
    assert [(await node.fired_for(r))["scheduled_for"] for r in runs] == [
        (START + timedelta(minutes=m)).isoformat() for m in (1, 3)]
    assert gate.started == 2


async def test_buffer_one_keeps_one_fire_waiting_and_starts_it_after(db, nodes, clock) -> None:
    gate = Gate()
    node = await nodes(db, kinds=gated(gate))
    trigger = {"type": "cron", "expression": "* * * * *"}
    await node.service.create(TENANT, "minutely", settings(trigger=trigger, overlap="buffer_one"), ACTOR)
    for _ in range(3):
        clock.advance(minutes=1)
        await node.tick()
    assert gate.started == 1 and len(await node.runs("minutely")) == 1
    assert [k for k in await node.kinds("minutely") if k != "created"] == ["fired", "buffered", "skipped"]

    gate.open.set()
    await node.settle()
    runs = await node.runs("minutely")
    assert [(await node.fired_for(r))["scheduled_for"] for r in runs] == [
        (START + timedelta(minutes=m)).isoformat() for m in (1, 2)]  # the waiting fire ran, the third did not
    assert all(r.status == "completed" for r in await node.runs("minutely"))
    assert (await node.kinds("minutely"))[-1] == "fired"


async def test_allow_all_runs_fires_side_by_side(db, nodes, clock) -> None:
    gate = Gate()
    node = await nodes(db, kinds=gated(gate))
    trigger = {"type": "cron", "expression": "* * * * *"}
    await node.service.create(TENANT, "minutely", settings(trigger=trigger, overlap="allow_all"), ACTOR)
    for _ in range(3):
        clock.advance(minutes=1)
        await node.tick()
    for _ in range(100):  # let the jobs start (yields to the loop; no time passes)
        if gate.started == 3:
            break
        await asyncio.sleep(0)
    assert node.service.busy(TENANT, "minutely") == 3
    assert gate.started == 3
    gate.open.set()
    await node.settle()
    assert node.service.busy(TENANT, "minutely") == 0
    assert [r.status for r in await node.runs("minutely")] == ["completed"] * 3


# -- pause, resume, failures --------------------------------------------------------------------


async def test_a_paused_schedule_does_not_fire_and_resumes_counting_from_now(db, nodes, clock) -> None:
    node = await nodes(db)
    await node.service.create(TENANT, "hourly", settings(), ACTOR)
    paused = await node.service.set_paused(TENANT, "hourly", True, ACTOR, "maintenance")
    assert (paused.paused, paused.paused_reason, paused.next_fire_at) == (True, "maintenance", None)
    assert node.service.upcoming(paused) == []

    clock.advance(hours=3, minutes=20)
    await node.tick()
    await node.settle()
    assert await node.runs("hourly") == []

    resumed = await node.service.set_paused(TENANT, "hourly", False, ACTOR)
    assert resumed.next_fire_at == at(13)  # 10:00 .. 12:00 fell while paused: not caught up
    assert node.service.upcoming(resumed, 3) == [at(13), at(14), at(15)]
    await node.tick()
    await node.settle()
    assert await node.runs("hourly") == []
    clock.advance(minutes=40)
    await node.tick()
    await node.settle()
    assert len(await node.runs("hourly")) == 1
    assert [k for k in await node.kinds("hourly") if k in ("paused", "resumed", "fired")] == [
        "paused", "resumed", "fired"]


def blocked_inbox(tmp_path: Path) -> Path:
    """Make every ingest of acme_inbox fail: a file stands where its folder, data/inbox/acme,
    would be created (a missing folder is no failure, it is made and read as empty)."""
    blocked = tmp_path / "data" / "inbox"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a folder\n")
    return blocked


async def test_a_schedule_pauses_itself_after_n_failed_runs_in_a_row(db, nodes, clock, tmp_path) -> None:
    node = await nodes(db)
    inbox = settings(workflow="ingest", payload={"source": "acme_inbox"}, pause_after_failures=3,
                     trigger={"type": "cron", "expression": "* * * * *"})
    await node.service.create(TENANT, "inbox", inbox, ACTOR)
    blocked_inbox(tmp_path)

    for expected in (1, 2):
        clock.advance(minutes=1)
        await node.tick()
        await node.settle()
        assert (await node.service.get(TENANT, "inbox")).consecutive_failures == expected
    clock.advance(minutes=1)
    await node.tick()
    await node.settle()

    runs = await node.runs("inbox")
    assert [r.status for r in runs] == ["failed"] * 3
    record = await node.service.get(TENANT, "inbox")
    assert record.paused and "3 failed runs" in record.paused_reason
    assert record.next_fire_at is None
    [auto] = [e for e in await node.history("inbox") if e.kind == "auto_paused"]
    assert auto.run_id == runs[-1].id and auto.detail["last_error"]

    clock.advance(minutes=5)
    await node.tick()
    await node.settle()
    assert len(await node.runs("inbox")) == 3  # paused: no more fires

    resumed = await node.service.set_paused(TENANT, "inbox", False, ACTOR)
    assert (resumed.paused, resumed.consecutive_failures) == (False, 0)


async def test_a_successful_run_resets_the_failure_count(db, nodes, clock, tmp_path) -> None:
    node = await nodes(db)
    inbox = settings(workflow="ingest", payload={"source": "acme_inbox"}, pause_after_failures=2,
                     trigger={"type": "cron", "expression": "* * * * *"})
    await node.service.create(TENANT, "inbox", inbox, ACTOR)
    blocked = blocked_inbox(tmp_path)
    clock.advance(minutes=1)
    await node.tick()
    await node.settle()
    assert (await node.service.get(TENANT, "inbox")).consecutive_failures == 1

    blocked.unlink()  # the source can be read again
    clock.advance(minutes=1)
    await node.tick()
    await node.settle()
    record = await node.service.get(TENANT, "inbox")
    assert (record.consecutive_failures, record.paused) == (0, False)
    assert [r.status for r in await node.runs("inbox")] == ["failed", "completed"]


# -- by hand: run now, backfill ------------------------------------------------------------------


async def test_run_now_fires_once_without_moving_the_schedule(db, nodes, clock) -> None:
    node = await nodes(db)
    await node.service.create(TENANT, "hourly", settings(), ACTOR)
    clock.advance(minutes=5)
    run = await node.service.run_now(TENANT, "hourly", ACTOR, None)
    await node.settle()
    assert (run.trigger_type, run.trigger_ref, run.started_by) == ("scheduled", "hourly", ACTOR)
    assert (await node.service.get(TENANT, "hourly")).next_fire_at == at(10)
    [fired] = [e for e in await node.history("hourly") if e.kind == "fired"]
    assert (fired.run_id, fired.actor) == (run.id, ACTOR)
    with pytest.raises(ScheduleNotFound):
        await node.service.run_now("globex", "hourly", ACTOR, None)


async def test_backfill_fires_once_per_past_time_and_never_repeats_a_fired_one(db, nodes, clock) -> None:
    node = await nodes(db)
    await node.service.create(TENANT, "hourly", settings(), ACTOR)
    clock.advance(hours=1)
    await node.tick()  # 10:00 fires on schedule
    await node.settle()
    clock.advance(minutes=30)

    times = await node.service.backfill(TENANT, "hourly", at(6), at(10), ACTOR)
    assert times == [at(h) for h in (6, 7, 8, 9, 10)]
    await node.settle()
    runs = await node.runs("hourly")
    assert sorted([(await node.fired_for(r))["scheduled_for"] for r in runs]) == [
        at(h).isoformat() for h in (6, 7, 8, 9, 10)]  # one run per time; 10:00 not twice
    backfilled = [r for r in runs if (await node.fired_for(r))["backfill"]]
    assert len(backfilled) == 4
    log = await node.history("hourly")
    assert [e.scheduled_for for e in log if e.kind == "already_fired"] == [at(10)]
    assert [e.scheduled_for for e in log if e.kind == "fired" and e.detail["backfill"]] == [
        at(h) for h in (6, 7, 8, 9)]

    await node.service.backfill(TENANT, "hourly", at(6), at(10), ACTOR)  # again: nothing new
    await node.settle()
    assert len(await node.runs("hourly")) == 5
    assert len([e for e in await node.history("hourly") if e.kind == "already_fired"]) == 6


@pytest.mark.parametrize("start, end, field", [
    (at(6), at(12), "body.end"),  # the future
    (at(8), at(7), "body.start"),
])
async def test_backfill_refuses_a_range_that_is_not_in_the_past(db, nodes, clock, start, end, field) -> None:
    node = await nodes(db)
    await node.service.create(TENANT, "hourly", settings(), ACTOR)
    clock.advance(hours=1, minutes=30)
    with pytest.raises(ValidationFailed) as caught:
        await node.service.backfill(TENANT, "hourly", start, end, ACTOR)
    assert caught.value.details[0]["field"] == field
    await node.settle()
    assert await node.runs("hourly") == []


# -- jitter --------------------------------------------------------------------------------------


async def test_jitter_delays_each_fire_and_a_delayed_fire_is_not_counted_as_missed(db, nodes, clock) -> None:
    asked: list[float] = []

    def jitter(most: float) -> float:
        asked.append(most)
        return 120.0

    node = await nodes(db, jitter=jitter)
    await node.service.create(TENANT, "hourly", settings(jitter_seconds=300, catch_up_seconds=0), ACTOR)
    clock.advance(hours=1, seconds=119)
    await node.tick()
    await node.settle()
    assert await node.runs("hourly") == []  # 10:00 plus 120 s of jitter is not yet
    assert asked and set(asked) == {300}

    clock.advance(seconds=1)
    await node.tick()
    await node.settle()
    [run] = await node.runs("hourly")  # two minutes late on purpose: fired, not dropped
    assert (await node.fired_for(run))["scheduled_for"] == at(10).isoformat()
    assert "dropped" not in await node.kinds("hourly")
    assert (await node.service.get(TENANT, "hourly")).next_fire_at == at(11)


# -- changes that last -------------------------------------------------------------------------


async def test_changes_made_at_runtime_survive_a_restart(db, nodes, clock) -> None:
    first = await nodes(db)
    await first.service.create(TENANT, "changed", settings(), ACTOR)
    await first.service.create(TENANT, "paused", settings(), ACTOR)
    await first.service.create(TENANT, "gone", settings(), ACTOR)
    clock.advance(minutes=10)
    await first.service.update(TENANT, "changed", {
        "trigger": {"type": "cron", "expression": "30 7 * * *", "timezone": "Europe/Paris"},
        "payload": {"window_hours": 6}, "description": "mornings",
    }, ACTOR)
    await first.service.set_paused(TENANT, "paused", True, ACTOR, "until further notice")
    await first.service.delete(TENANT, "gone", ACTOR)
    await first.stop()

    clock.advance(hours=2)
    second = await nodes(db)
    await second.settle()
    assert [r.id for r in await second.service.repo.list_for(TENANT)] == ["changed", "paused"]
    changed = await second.service.get(TENANT, "changed")
    kept = second.service.settings_of(changed)
    assert (kept.trigger.expression, kept.trigger.timezone, kept.payload, kept.description) == (
        "30 7 * * *", "Europe/Paris", {"window_hours": 6, "until": None}, "mornings")
    assert changed.next_fire_at == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)  # 07:30 in Paris
    paused = await second.service.get(TENANT, "paused")
    assert (paused.paused, paused.paused_reason) == (True, "until further notice")
    with pytest.raises(ScheduleNotFound):
        await second.service.get(TENANT, "gone")
    assert await second.runs("paused") == [] and await second.runs("gone") == []
    assert await second.runs("changed") == []  # its old hourly trigger was replaced before 10:00


def declared(**fields: Any) -> DeclaredSchedule:
    base = {"id": "digest", "tenant": TENANT, "workflow": "feedback_digest",
            "trigger": {"type": "cron", "expression": "0 7 * * *"}, "payload": {"window_hours": 24}}
    return DeclaredSchedule.model_validate({**base, **fields})


async def test_declared_schedules_are_seeded_once_and_reapplied_only_when_changed(db, nodes, clock) -> None:
    first = await nodes(db, declared=[declared()])
    seeded = await first.service.get(TENANT, "digest")
    assert (seeded.origin, seeded.created_by) == ("config", "config:schedules.yaml")
    await first.service.update(TENANT, "digest", {"payload": {"window_hours": 12}}, ACTOR)
    await first.stop()

    second = await nodes(db, declared=[declared()])  # the file did not change: the API's change stays
    kept = await second.service.get(TENANT, "digest")
    assert second.service.settings_of(kept).payload["window_hours"] == 12
    await second.stop()

    third = await nodes(db, declared=[declared(payload={"window_hours": 48})])  # the file changed
    reapplied = await third.service.get(TENANT, "digest")
    assert third.service.settings_of(reapplied).payload["window_hours"] == 48
    assert reapplied.updated_by == "config:schedules.yaml"
    await third.stop()

    fourth = await nodes(db, declared=[declared(payload={"window_hours": 48})])
    assert fourth.service.settings_of(await fourth.service.get(TENANT, "digest")).payload["window_hours"] == 48
    assert [e.kind for e in await fourth.history("digest")].count("created") == 1


async def test_a_deleted_declared_schedule_is_not_recreated_on_restart(db, nodes, clock) -> None:
    first = await nodes(db, declared=[declared()])
    await first.service.delete(TENANT, "digest", ACTOR)
    await first.stop()

    second = await nodes(db, declared=[declared()])
    assert await second.service.repo.list_for(TENANT) == []
    await second.stop()

    third = await nodes(db, declared=[declared(description="now with a description")])  # declaration changed
    assert [r.id for r in await third.service.repo.list_for(TENANT)] == ["digest"]


async def test_a_bad_declaration_is_skipped_and_the_others_load(db, nodes) -> None:
    node = await nodes(db, declared=[declared(id="broken", workflow="no_such_flow"), declared()])
    assert [r.id for r in await node.service.repo.list_for(TENANT)] == ["digest"]


async def test_a_crash_between_the_run_and_the_schedule_save_does_not_fire_twice(db, nodes, clock, monkeypatch) -> None:
    first = await nodes(db)
    await first.service.create(TENANT, "hourly", settings(), ACTOR)
    save = ScheduleRepository.save

    async def crash_on_fire(self, record, *, is_new, log=()):
        """The store dies after a fire's run is committed, before the schedule is saved."""
        if any(e.kind == "fired" for e in log):
            raise ConnectionError("the process died here")
        return await save(self, record, is_new=is_new, log=log)

    monkeypatch.setattr(ScheduleRepository, "save", crash_on_fire)
    clock.advance(hours=1)
    with pytest.raises(ConnectionError):
        await first.tick()
    await first.settle()
    assert len(await first.runs("hourly")) == 1
    assert (await first.service.get(TENANT, "hourly")).next_fire_at == at(10)  # the save was lost
    await first.stop()
    monkeypatch.undo()

    second = await nodes(db)  # restart at the same moment: 10:00 is due again
    await second.settle()
    assert len(await second.runs("hourly")) == 1
    [again] = [e for e in await second.history("hourly") if e.kind == "already_fired"]
    assert again.scheduled_for == at(10)
    record = await second.service.get(TENANT, "hourly")
    assert (record.next_fire_at, record.last_fire_at) == (at(11), at(10))


# -- a stop in the middle of a fire ------------------------------------------------------------


async def test_a_fire_still_running_when_the_service_stopped_counts_for_overlap_after_restart(db, nodes, clock) -> None:
    """A scheduled job left ``running`` by a stop runs again on start; ``skip`` must see it as the
    last fire still running, not start a second one beside it."""
    gate = Gate()
    first = await nodes(db, kinds=gated(gate))
    minutely = settings(trigger={"type": "cron", "expression": "* * * * *"})
    await first.service.create(TENANT, "minutely", minutely, "user:ann")
    clock.advance(minutes=1)
    await first.tick()
    assert gate.started == 1
    await first.stop()  # the job's run stays running

    clock.advance(minutes=1)
    second = await nodes(db, kinds=gated(gate))  # re-runs the job, and catches up on the minute missed
    await asyncio.sleep(0)
    assert gate.started == 2  # the interrupted job, again
    assert second.service.busy(TENANT, "minutely") == 1
    assert [e.kind for e in await second.history("minutely")][-1] == "skipped"
    assert len(await second.runs("minutely")) == 1
    gate.open.set()
    await second.settle()
    assert second.service.busy(TENANT, "minutely") == 0


async def test_a_backfill_cut_short_by_a_stop_goes_on_after_restart(db, nodes, clock) -> None:
    """A backfill is a promise recorded in the history (``backfill_requested`` with its count):
    the times it had not fired when the service stopped fire after the restart, once each."""
    gate = Gate()
    first = await nodes(db, kinds=gated(gate))
    await first.service.create(TENANT, "hourly", settings(), "user:ann")
    clock.advance(minutes=30)
    hours = [datetime(2026, 11, 24, h, tzinfo=UTC) for h in (6, 7, 8)]
    assert await first.service.backfill(TENANT, "hourly", hours[0], hours[-1], "user:ann") == hours
    for _ in range(50):
        if gate.started:
            break
        await asyncio.sleep(0.01)
    assert gate.started == 1  # 06:00 is running; 07:00 and 08:00 wait for it
    await first.stop()

    gate.open.set()
    second = await nodes(db, kinds=gated(gate))
    await second.settle()
    for _ in range(100):
        fired = sorted([(await second.fired_for(r))["scheduled_for"] for r in await second.runs("hourly")])
        if len(fired) == 3:
            break
        await asyncio.sleep(0.02)
        await second.settle()
    assert fired == [h.isoformat() for h in hours]
    await second.stop()
    third = await nodes(db, kinds=gated(gate))  # a finished backfill is not taken up again
    await third.settle()
    assert len(await third.runs("hourly")) == 3
    assert [e.kind for e in await third.history("hourly")].count("already_fired") <= 1


async def test_a_declared_schedule_another_process_created_meanwhile_does_not_stop_the_start(
    db, nodes, clock, monkeypatch
) -> None:
    """Two servers starting at once on a fresh database both find the schedule missing; the one
    that creates it second must leave it to the first, not fail to start."""
    first = await nodes(db, declared=[declared()])
    await first.stop()
    real_get, stale = ScheduleRepository.get, [True]

    async def read_before_the_other_created_it(self, *args: Any, **kwargs: Any) -> Any:
        if stale.pop() if stale else False:
            return None
        return await real_get(self, *args, **kwargs)

    monkeypatch.setattr(ScheduleRepository, "get", read_before_the_other_created_it)
    second = await nodes(db, declared=[declared()])
    monkeypatch.undo()
    assert stale == []
    assert [e.kind for e in await second.history("digest")].count("created") == 1
    await second.stop()
