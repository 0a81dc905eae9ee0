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
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.jobs import JobRunner
from pipeline.start_request import StartRequest
from pipeline.tool_calls import OUTCOME_UNKNOWN
from store.events import EventRepository
from tests.config_copies import STEPWISE_PLAYBOOK, config_with
from tests.pipeline.carrier_tool import Carrier, catalog_with, run_through
from tests.pipeline.engines import Engines
from tests.pipeline.test_scheduler import Gate, gated
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


async def test_a_job_taken_from_a_stalled_owner_is_closed_once(db, catalog, clock, tmp_path):
    """The stalled owner's job ends after the other process took its run over: its close is
    fenced off, so the run has one ``workflow.completed``, written by the new owner."""
    several_processes(db)
    gate = Gate()
    owner = PipelineEngine(db, InProcessBus(), catalog, clock=clock, workers=2)
    other = PipelineEngine(db, InProcessBus(), catalog, clock=clock, workers=2)
    runners = [JobRunner(e, db, catalog, gated(gate), data_dir=tmp_path, clock=clock, executor=e.executor)
               for e in (owner, other)]
    try:
        for engine, runner in zip((owner, other), runners, strict=True):
            await engine.start()
            await runner.start()
        job = await runners[0].launch(StartRequest("globex", "feedback_digest", {}, "user:test", "manual"),
                                      "feedback_digest")
        stop_beating(owner)  # its job is still waiting on the gate
        clock.advance(seconds=LEASE.total_seconds() + 1)
        assert await other.executor.sweep() == 1
        gate.open.set()
        ended = [await asyncio.wait_for(runner.wait(job.id), timeout=30) for runner in runners]
    finally:
        for engine, runner in zip((owner, other), runners, strict=True):
            await runner.stop()
            await engine.stop()
    final = await stored_run(other.runs, "globex", job.id)
    log = await EventRepository(db).for_run("globex", job.id)
    assert final.status == "completed" and final.executor_id == other.executor.id
    assert [e.topic for e in log].count("workflow.completed") == 1
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert ended[1] is not None and ended[1].status == "completed"
