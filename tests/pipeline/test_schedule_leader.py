"""Several processes on one PostgreSQL: one scheduler leader fires; when it is gone another takes
over and fires; edits, run-now and backfills made through a process that does not lead reach
the leader; a time never fires twice, even with two processes both firing for a moment; overlap
holds across a failover. Two runtimes, each on its own engine (its own connections), stand for
two server processes; the alarm is off and tests ``tick``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from config.schedules import ScheduleFile
from config.settings import Settings
from eventbus import InProcessBus
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobKind
from pipeline.runtime import SCHEDULER_LOCK, open_runtime
from pipeline.schedule_leader import ScheduleLeader
from tests.pipeline.test_scheduler import ACTOR, START, TENANT, Gate, Node, at, gated, settings
from tests.postgres_schemas import second_process

MINUTELY = {"type": "cron", "expression": "* * * * *"}
TAKEOVER_LIMIT = 30.0
"""Seconds a test waits for something the leader loop does every 0.1 s before it fails."""


@pytest.fixture
async def other_process(db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on ``db``'s schema: another server process's connections."""
    if db.dialect.name != "postgresql":
        pytest.skip("one process serves a SQLite file, and it always leads")
    async with second_process(db) as other:
        yield other


@pytest.fixture
async def cluster(catalog: Catalog, clock: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    """Start a process on an engine; the leader lock is tried every 0.1 s."""
    made: list[Node] = []
    config = replace(catalog, schedules=ScheduleFile(schedules=[]))

    async def start(db: AsyncEngine, *, kinds: dict[str, JobKind] = JOB_KINDS) -> Node:
        options = Settings(data_dir=tmp_path / f"data{len(made)}", engine_workers=2, scheduler_enabled=False,
                           scheduler_leader_retry_seconds=0.1, scheduler_poll_seconds=0.05)
        running = AsyncExitStack()
        runtime = await running.enter_async_context(
            open_runtime(db, InProcessBus(), config, options, clock=clock, job_kinds=kinds))
        made.append(Node(runtime, db, running))
        return made[-1]

    yield start
    for node in made:
        await node.stop()


async def kill_lock_session(db: AsyncEngine) -> None:
    """End the session holding the scheduler's lock, as the server does when its process dies."""
    async with db.connect() as conn:
        ended = await conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) "
            "= hashtextextended(:name || '/' || current_schema(), 0)"), {"name": SCHEDULER_LOCK})
        assert ended.scalars().all() == [True]


async def until(condition: Callable[[], bool]) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), TAKEOVER_LIMIT)


async def test_only_the_leader_fires_a_due_schedule_and_only_once(db, other_process, cluster, clock) -> None:
    a = await cluster(db)
    b = await cluster(other_process)
    assert (a.service.leading, b.service.leading) == (True, False)
    await a.service.create(TENANT, "hourly", settings(), ACTOR)

    clock.advance(hours=1)
    await b.tick()  # not the leader: nothing fires
    await b.settle()
    assert await b.runs("hourly") == []

    await a.tick()
    await a.settle()
    await b.tick()
    await a.tick()
    await a.settle()
    [run] = await a.runs("hourly")
    assert run.status == "completed"
    assert [e.scheduled_for for e in await a.history("hourly") if e.kind == "fired"] == [at(10)]


async def test_two_processes_that_both_fire_for_a_moment_fire_a_time_once(db, other_process, cluster, clock) -> None:
    a = await cluster(db)
    b = await cluster(other_process)
    await b.service.create(TENANT, "hourly", settings(), ACTOR)
    b.service.timer.leading = True  # b has not yet noticed it lost the lock, say
    clock.advance(hours=1)
    await asyncio.gather(a.tick(), b.tick())
    await a.settle()
    await b.settle()
    assert len(await a.runs("hourly")) == 1
    kinds = sorted(e.kind for e in await a.history("hourly") if e.scheduled_for == at(10))
    assert kinds in (["fired"], ["already_fired", "fired"])
    assert (await a.service.get(TENANT, "hourly")).next_fire_at == at(11)


async def test_when_the_leaders_session_dies_the_other_process_takes_over_and_fires(
    db, other_process, cluster, clock,
) -> None:
    a = await cluster(db)
    b = await cluster(other_process)
    await a.service.create(TENANT, "hourly", settings(), ACTOR)

    await kill_lock_session(db)
    await until(lambda: b.service.leading)
    await until(lambda: not a.service.leading)  # a notices at its next check and stops firing

    clock.advance(hours=1)
    await a.tick()
    await b.tick()
    await b.settle()
    [run] = await b.runs("hourly")
    assert run.status == "completed"

    await b.stop()  # a clean stop hands over too
    await until(lambda: a.service.leading)


async def test_schedules_created_and_paused_through_another_process_reach_the_leader(
    db, other_process, cluster, clock,
) -> None:
    a = await cluster(db)
    b = await cluster(other_process)
    await b.service.create(TENANT, "hourly", settings(), ACTOR)
    await b.service.create(TENANT, "paused", settings(), ACTOR)
    await b.service.set_paused(TENANT, "paused", True, ACTOR)

    clock.advance(hours=1)
    await a.tick()
    await a.settle()
    assert len(await a.runs("hourly")) == 1
    assert await a.runs("paused") == []

    await b.service.update(TENANT, "hourly", {"trigger": {"type": "cron", "expression": "30 * * * *"}}, ACTOR)
    clock.advance(minutes=29)
    await a.tick()
    await a.settle()
    assert len(await a.runs("hourly")) == 1
    clock.advance(minutes=1)  # 10:30
    await a.tick()
    await a.settle()
    assert len(await a.runs("hourly")) == 2


async def test_a_backfill_asked_of_another_process_is_fired_by_the_leader(db, other_process, cluster, clock) -> None:
    a = await cluster(db)
    b = await cluster(other_process)
    await b.service.create(TENANT, "hourly", settings(), ACTOR)
    clock.advance(hours=4)
    times = await b.service.backfill(TENANT, "hourly", at(5), at(7), ACTOR)
    assert times == [at(5), at(6), at(7)]
    await b.settle()
    assert await b.runs("hourly") == []  # b does not fire it
    await a.service.timer.sync()
    await a.settle()
    backfilled = [e.scheduled_for for e in await a.history("hourly") if e.kind == "fired"]
    assert backfilled == times
    assert "backfill_done" in await a.kinds("hourly")


async def test_run_now_on_another_process_counts_for_the_leaders_overlap(db, other_process, cluster, clock) -> None:
    gate = Gate()
    a = await cluster(db, kinds=gated(gate))
    b = await cluster(other_process, kinds=gated(gate))
    await b.service.create(TENANT, "minutely", settings(trigger=MINUTELY), ACTOR)
    by_hand = await b.service.run_now(TENANT, "minutely", ACTOR, None)

    clock.advance(minutes=1)
    await a.tick()  # adopts b's running fire first: this one is skipped
    assert a.service.busy(TENANT, "minutely") == 1
    [skipped] = [e for e in await a.history("minutely") if e.kind == "skipped"]
    assert skipped.scheduled_for == START + timedelta(minutes=1)

    gate.open.set()
    await b.settle()
    await a.settle()  # a saw b's run end in the store
    assert a.service.busy(TENANT, "minutely") == 0
    clock.advance(minutes=1)
    await a.tick()
    await a.settle()
    runs = await a.runs("minutely")
    assert [r.id for r in runs if r.id != by_hand.id] and all(r.status == "completed" for r in runs)


async def test_skip_holds_for_a_fire_after_a_failover(db, other_process, cluster, clock) -> None:
    gate = Gate()
    a = await cluster(db, kinds=gated(gate))
    b = await cluster(other_process, kinds=gated(gate))
    await a.service.create(TENANT, "minutely", settings(trigger=MINUTELY), ACTOR)
    clock.advance(minutes=1)
    await a.tick()  # a's fire: its job waits on the gate, in process a
    [first] = await a.runs("minutely")
    assert first.status == "running"

    await kill_lock_session(db)
    await until(lambda: b.service.leading)
    assert b.service.busy(TENANT, "minutely") == 1  # b took a's running fire up from the store

    clock.advance(minutes=1)
    await b.tick()
    [skipped] = [e for e in await b.history("minutely") if e.kind == "skipped"]
    assert skipped.scheduled_for == START + timedelta(minutes=2)
    assert len(await b.runs("minutely")) == 1

    gate.open.set()
    await a.settle()
    await b.settle()
    clock.advance(minutes=1)
    await b.tick()
    await b.settle()
    assert [r.status for r in await b.runs("minutely")] == ["completed", "completed"]


class SwallowingLock:
    """A lock whose check lets a cancellation go, as ``asyncio.wait_for`` does on Python 3.11
    when the answer arrives in the same turn as the cancel (the leader lock asks through it)."""

    contested = True

    def __init__(self) -> None:
        self.checking, self.swallowed = asyncio.Event(), False

    async def acquire(self) -> bool:
        return True

    async def held(self) -> bool:
        self.checking.set()
        if self.swallowed:
            return True
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.swallowed = True  # once
        return True

    async def release(self) -> None:
        return None


class IdleTimer:
    async def lead(self) -> None: ...

    async def resign(self) -> None: ...

    async def sync(self) -> None: ...


async def test_a_leader_stops_even_when_a_check_lets_the_cancellation_go() -> None:
    lock = SwallowingLock()
    leader = ScheduleLeader(lock, IdleTimer(), retry_seconds=0.01, poll_seconds=0.01)
    await leader.start()
    await asyncio.wait_for(lock.checking.wait(), TAKEOVER_LIMIT)
    stopping = asyncio.create_task(leader.stop())
    stopped, _ = await asyncio.wait({stopping}, timeout=TAKEOVER_LIMIT)
    assert stopped, "the leader's loop went on after stop()"
    assert not leader.leading
