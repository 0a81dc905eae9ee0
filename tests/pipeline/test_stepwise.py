"""A playbook run ``mode: stepwise`` waits after Policy with its first step ready; only a
run-next-step call with ``execute`` takes a step, one per call, whatever the workers, a drain or
a restart do meanwhile; a look (``execute=False``) changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog, load_catalog
from domain.run_state import StepStatus
from pipeline.engine import PipelineEngine
from pipeline.start_request import StartRequest
from store.events import EventRepository
from store.records import EventRecord, RunRecord
from tests.config_copies import STEPWISE_PLAYBOOK, config_with
from tests.pipeline.engines import Engines

WORKFLOW = "exception_pipeline"
STEPS = ["hold", "assign", "note"]


@pytest.fixture(scope="module")
def stepwise_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    config = config_with(tmp_path_factory.mktemp("stepwise") / "config", {"zz-stepwise.yaml": STEPWISE_PLAYBOOK})
    catalog = load_catalog(config)
    playbook = catalog.playbook("zz-stepwise@3")
    assert catalog.problems == [] and playbook is not None and playbook.mode == "stepwise"
    return catalog


@pytest.fixture
def engines(engines_for: Callable[..., Engines], stepwise_catalog: Catalog) -> Engines:
    return engines_for(stepwise_catalog, workers=2)


async def settle(engine: PipelineEngine) -> None:
    await asyncio.wait_for(engine.drain(), timeout=30)


async def events(db: AsyncEngine, run: RunRecord) -> list[EventRecord]:
    log = await EventRepository(db).for_run(run.tenant_id, run.id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    return log


def completed(log: list[EventRecord]) -> list[str]:
    return [e.payload["step_id"] for e in log if e.topic == "playbook.step_completed"]


async def start(engine: PipelineEngine, clock: Any) -> RunRecord:
    body = {
        "source": "stripe", "source_id": "ch_1", "domain": "payments", "type": "payment.failed",
        "code": "card_declined", "amount": "42.50", "currency": "USD",
        "sla_deadline": (clock.now + timedelta(hours=6)).isoformat(),
    }
    return await engine.start_run(StartRequest("globex", WORKFLOW, body, actor="user:ana", trigger_type="api"))


async def test_a_stepwise_run_stops_after_policy_with_its_first_step_ready(db: AsyncEngine, engines, clock) -> None:
    engine = await engines(db)
    run = await start(engine, clock)
    assert (run.status, run.state.awaiting_next_step) == ("resolving", True)
    policy = run.state.policy
    assert policy is not None and (policy.playbook_id, policy.playbook_version) == ("zz-stepwise", 3)
    assert [run.state.step_status(step) for step in STEPS] == [StepStatus.READY] + [StepStatus.PENDING] * (
        len(STEPS) - 1)  # the first step is marked ready: the one run-next-step takes
    log = await events(db, run)
    assert [e.topic for e in log] == [
        "run.received", "triage.completed", "policy.evaluated", "playbook.started", "playbook.next_step_ready",
    ]
    assert log[-1].payload == {
        "playbook_id": "zz-stepwise", "playbook_name": "Hold, assign and note a declined card, one step at a time",
        "playbook_version": 3, "step_id": "hold", "step_name": "Put the order on hold", "step_order": 1,
    }

    await settle(engine)  # no worker takes it...
    assert (await engine.runs.get("globex", run.id)).version == run.version
    await engine.stop()
    restarted = await engines(db)  # ...nor does a restart pick it up
    recovered = engines.recovered[restarted]
    await settle(restarted)
    assert recovered == 0 and restarted.queued == 0
    again = await restarted.runs.get("globex", run.id)
    # the restarted process owns it now (a claim is a write: its version moved) but took no step
    assert (again.status, again.last_seq, again.state.awaiting_next_step) == ("resolving", run.last_seq, True)
    assert again.executor_id == restarted.executor.id


async def test_each_execute_takes_exactly_one_step_and_the_last_completes_the_run(
    db: AsyncEngine, engines, clock
) -> None:
    engine = await engines(db)
    run = await start(engine, clock)
    for taken, step in enumerate(STEPS[:-1], start=1):
        clock.advance(minutes=1)
        before, after = await engine.run_next_step("globex", run.id, execute=True)
        await settle(engine)
        assert (before.state.awaiting_next_step, after.version) == (True, before.version + 1)
        now = await engine.runs.get("globex", run.id)
        assert (now.version, now.status, now.state.awaiting_next_step) == (after.version, "resolving", True)
        waiting = [StepStatus.READY] + [StepStatus.PENDING] * (len(STEPS) - taken - 1) if taken < len(STEPS) else []
        assert [now.state.step_status(s) for s in STEPS] == [StepStatus.COMPLETED] * taken + waiting
        log = await events(db, now)
        assert completed(log) == STEPS[:taken] and completed(log[before.last_seq:]) == [step]
        assert (log[-1].topic, log[-1].payload["step_id"]) == ("playbook.next_step_ready", STEPS[taken])

    before, after = await engine.run_next_step("globex", run.id, execute=True)
    await settle(engine)
    done = await engine.runs.get("globex", run.id)
    assert (after.status, done.status, done.state.awaiting_next_step) == ("completed", "completed", False)
    assert all(done.state.step_status(step) == StepStatus.COMPLETED for step in STEPS)
    assert done.state.steps["note"].outputs == {"comment": "held, owned by queue:payments-ops"}
    assert (done.state.owner, done.state.exception_status) == ("queue:payments-ops", "on_hold")
    assert (done.state.feedback.total_steps, done.state.feedback.completed_steps) == (3, 3)
    log = await events(db, done)
    assert completed(log) == STEPS
    assert [e.topic for e in log[before.last_seq:]] == [
        "playbook.step_completed", "playbook.completed", "run.resolved", "feedback.recorded", "run.completed",
    ]
    assert {e.payload["step_id"] for e in log if e.topic == "playbook.next_step_ready"} == {"hold", "assign", "note"}


async def test_a_stepwise_run_records_its_playbook_started_once(sqlite_db: AsyncEngine, engines, clock) -> None:
    engine = await engines(sqlite_db)
    run = await start(engine, clock)
    for _ in STEPS:
        await engine.run_next_step("globex", run.id, execute=True)
    done = await engine.runs.get("globex", run.id)
    topics = [e.topic for e in await events(sqlite_db, done)]
    assert done.status == "completed" and topics.count("playbook.completed") == 1
    assert topics.count("playbook.started") == 1, topics


async def test_a_look_without_execute_changes_nothing(sqlite_db: AsyncEngine, engines, clock) -> None:
    engine = await engines(sqlite_db)
    run = await start(engine, clock)
    await engine.run_next_step("globex", run.id, execute=True)  # one step taken: the look is mid-playbook
    taken = await engine.runs.get("globex", run.id)
    for _ in range(2):
        before, after = await engine.run_next_step("globex", run.id, execute=False)
        await settle(engine)
        assert before == after
        assert (before.version, before.last_seq) == (taken.version, taken.last_seq)
    now = await engine.runs.get("globex", run.id)
    assert (now.version, now.last_seq, now.state) == (taken.version, taken.last_seq, taken.state)
    assert completed(await events(sqlite_db, now)) == ["hold"]
