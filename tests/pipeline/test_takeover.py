"""Two engines on one database, as two server processes: a run belongs to the process that
wrote it; when that process stops beating for the lease, the other takes the run over and
applies today's rule to the call it was making (an idempotent tool is called again, any other
fails "outcome unknown"); a process that merely is slow keeps its run; a process that comes
back after losing its run is fenced off; a clean stop hands runs over at once; and two
processes asked to take the same step: one wins, one gets ``LoopConflict``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog, load_catalog
from domain.errors import LoopConflict
from pipeline.engine import PipelineEngine
from pipeline.tool_calls import OUTCOME_UNKNOWN
from store.events import EventRepository
from tests.config_copies import STEPWISE_PLAYBOOK, config_with
from tests.pipeline.carrier_tool import Carrier, catalog_with, run_through
from tests.pipeline.engines import Engines
from tests.pipeline.test_stepwise import start
from tests.stored import stored_run

LEASE = timedelta(seconds=10)  # the Executor's default


def several_processes(db: AsyncEngine) -> None:
    if db.dialect.name == "sqlite":
        pytest.skip("one process per SQLite file: a starting process knows every other one is dead")


def stop_beating(engine: PipelineEngine) -> asyncio.Task[None]:
    """The process stops recording that it is alive (a long stall, or the first half of dying)."""
    heartbeat = engine.executor._task
    assert heartbeat is not None, "the engine is not started"
    heartbeat.cancel()
    return heartbeat


async def crash(engine: PipelineEngine) -> None:
    """What SIGKILL leaves behind: the process stops beating and advancing, retires nothing."""
    tasks = [stop_beating(engine), *engine._workers]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def mid_call(db: AsyncEngine, catalog: Catalog, clock, tool: Carrier) -> tuple[PipelineEngine, str]:
    """An engine whose worker is inside the tool call of a run it owns."""
    tool.hang = asyncio.Event()
    owner, run = await run_through(db, catalog, clock)
    while not tool.requests:
        await asyncio.sleep(0.01)
    return owner, run.id


async def settled(engine: PipelineEngine, run_id: str):
    await asyncio.wait_for(engine.drain(), timeout=30)
    return await stored_run(engine.runs, "globex", run_id)


async def test_a_dead_owners_run_is_taken_over_after_the_lease_and_its_unrepeatable_call_is_not_made_again(
    db, clock, tmp_path, carrier
):
    several_processes(db)
    tool, url = carrier
    catalog = catalog_with(tmp_path, url)
    owner, run_id = await mid_call(db, catalog, clock, tool)
    await crash(owner)
    other = PipelineEngine(db, owner.committer._bus, catalog, clock=clock, workers=2)
    try:
        assert await other.start() == 0  # the owner's heartbeat is still fresh: its run stays its own
        clock.advance(seconds=LEASE.total_seconds() + 1)
        assert await other.executor.sweep() == 1
        done = await settled(other, run_id)
    finally:
        await other.stop()
    step = done.state.steps["file-claim"]
    assert done.executor_id == other.executor.id and other.executor.taken_over == 1
    assert (done.status, step.error) == ("failed", OUTCOME_UNKNOWN)
    assert len(tool.requests) == 1


async def test_an_idempotent_call_of_a_dead_owner_is_made_again_with_the_same_key(db, clock, tmp_path, carrier):
    tool, url = carrier
    catalog = catalog_with(tmp_path, url, idempotent=True)
    owner, run_id = await mid_call(db, catalog, clock, tool)
    await crash(owner)
    tool.hang.set()  # the carrier answers the next caller at once
    other = PipelineEngine(db, owner.committer._bus, catalog, clock=clock, workers=2)
    try:
        await other.start()
        clock.advance(seconds=LEASE.total_seconds() + 1)
        await other.executor.sweep()
        done = await settled(other, run_id)
    finally:
        await other.stop()
    assert done.status == "completed"
    assert [r["key"] for r in tool.requests] == [f"{run_id}:file-claim"] * 2


async def test_a_slow_owner_keeps_its_run_and_one_that_wakes_after_losing_it_is_fenced_off(
    db, clock, tmp_path, carrier
):
    several_processes(db)
    tool, url = carrier
    catalog = catalog_with(tmp_path, url)
    owner, run_id = await mid_call(db, catalog, clock, tool)
    stop_beating(owner)  # its worker is still inside the call
    other = PipelineEngine(db, owner.committer._bus, catalog, clock=clock, workers=2)
    try:
        await other.start()
        clock.advance(seconds=LEASE.total_seconds() - 1)
        assert await other.executor.sweep() == 0  # within the lease: not taken
        clock.advance(seconds=2)
        assert await other.executor.sweep() == 1
        taken = await settled(other, run_id)
        tool.hang.set()  # the old owner's call now answers: its write must not land
        await asyncio.wait_for(owner.drain(), timeout=30)
        final = await stored_run(other.runs, "globex", run_id)
    finally:
        await other.stop()
        await owner.stop()
    assert taken.status == "failed" and final.version == taken.version and final.last_seq == taken.last_seq
    log = await EventRepository(db).for_run("globex", run_id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert not [e for e in log if e.topic == "playbook.step_completed" and e.payload.get("step_id") == "file-claim"]


async def test_a_clean_stop_hands_its_runs_over_at_once(db, clock, tmp_path, carrier):
    tool, url = carrier
    catalog = catalog_with(tmp_path, url, idempotent=True)
    owner, run_id = await mid_call(db, catalog, clock, tool)
    await owner.stop()  # cancels the call in flight; the run is still resolving
    tool.hang.set()
    other = PipelineEngine(db, owner.committer._bus, catalog, clock=clock, workers=2)
    try:
        assert await other.start() == 1  # no lease to wait out: the owner retired
        done = await settled(other, run_id)
    finally:
        await other.stop()
    assert done.status == "completed"


@pytest.fixture(scope="module")
def stepwise_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    config = config_with(tmp_path_factory.mktemp("stepwise") / "config", {"zz-stepwise.yaml": STEPWISE_PLAYBOOK})
    return load_catalog(config)


async def test_two_processes_asked_to_take_the_same_step_one_wins_and_one_is_a_loop_conflict(
    db, clock, engines_for: Callable[..., Engines], stepwise_catalog
):
    engines = engines_for(stepwise_catalog, workers=2)
    first, second = await engines(db), await engines(db)
    run = await start(first, clock)
    await asyncio.wait_for(first.drain(), timeout=30)
    release, submit = asyncio.Event(), first.committer.submit

    async def held(write):  # the first process's step stays uncommitted until the second has answered
        await release.wait()
        return await submit(write)

    first.committer.submit = held  # type: ignore[method-assign]
    slow = asyncio.create_task(first.run_next_step("globex", run.id, execute=True))
    await asyncio.sleep(0.05)
    _, after = await second.run_next_step("globex", run.id, execute=True)
    release.set()
    with pytest.raises(LoopConflict):
        await slow
    log = await EventRepository(db).for_run("globex", run.id)
    steps = [e.payload["step_id"] for e in log if e.topic == "playbook.step_completed"]
    assert steps == ["hold"] and after.state.steps["hold"].status == "completed"
