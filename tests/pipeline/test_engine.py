"""The engine end to end on a real database: complete, pause, resume, reject, recover after a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from config.policies import DEFAULT_GATE_SCHEMA
from domain.errors import RunNotFound, RunNotPaused, ValidationFailed
from domain.run_state import new_state
from domain.topics import Topic
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.stages import triage_stage
from pipeline.start_request import StartRequest
from pipeline.transition import Transition
from store.events import EventRepository
from store.records import RunRecord
from store.writer import write_batch
from tests.pipeline.engines import Engines
from tests.stored import stored_run

WORKFLOW = "exception_pipeline"
COMPLETED = [
    "run.received", "triage.completed", "policy.evaluated", "playbook.started",
    "playbook.step_completed", "playbook.step_completed", "playbook.step_completed",
    "playbook.completed", "run.resolved", "feedback.recorded", "run.completed",
]
PAUSED = ["run.received", "triage.completed", "policy.evaluated", "run.paused"]


def card_declined(clock: Any, amount: str = "42.50") -> dict[str, Any]:
    return {
        "source": "stripe", "source_id": "ch_1", "domain": "payments", "type": "payment.failed",
        "code": "card_declined", "amount": amount, "currency": "USD",
        "sla_deadline": (clock.now + timedelta(hours=6)).isoformat(),
        "context": {"customer_email": "maria@example.com"},
    }


@pytest.fixture
def engines(engines_for: Callable[..., Engines], catalog: Catalog) -> Engines:
    return engines_for(catalog, workers=4)


async def settle(engine: PipelineEngine) -> None:
    """Wait for the engine to go idle; a stuck engine fails the test instead of hanging it."""
    await asyncio.wait_for(engine.drain(), timeout=30)


async def topics(db: AsyncEngine, run: RunRecord) -> list[str]:
    log = await EventRepository(db).for_run(run.tenant_id, run.id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    return [e.topic for e in log]


async def start(engine: PipelineEngine, clock: Any, amount: str = "42.50", tenant: str = "acme") -> RunRecord:
    run = await engine.start_run(StartRequest(tenant, WORKFLOW, card_declined(clock, amount), actor="user:ana",
                                              trigger_type="api"))
    await settle(engine)
    return await stored_run(engine.runs, tenant, run.id)


async def test_a_small_card_decline_completes_on_every_backend(db: AsyncEngine, engines, clock) -> None:
    engine = await engines(db)
    run = await start(engine, clock)
    assert run.status == "completed"
    assert await topics(db, run) == COMPLETED
    policy, feedback = run.state.policy, run.state.feedback
    assert policy is not None and (policy.playbook_id, policy.playbook_version) == ("payment-card-declined", 1)
    assert feedback is not None and feedback.human_interventions == 0


async def test_a_small_card_decline_completes_with_feedback(sqlite_db: AsyncEngine, engines, clock) -> None:
    engine = await engines(sqlite_db)
    run = await start(engine, clock)
    assert (run.status, run.last_seq, run.pause_expires_at) == ("completed", len(COMPLETED), None)
    feedback = run.state.feedback
    assert feedback is not None
    assert (feedback.outcome, feedback.total_steps, feedback.completed_steps) == ("completed", 3, 3)
    log = await EventRepository(sqlite_db).for_run("acme", run.id)
    step = [e.payload for e in log if e.topic == "playbook.step_completed"][1]
    assert step["outputs"]["target"] == "maria@example.com"
    named = {e.topic: {k: e.payload.get(k) for k in ("playbook_id", "playbook_version")} for e in log
             if e.topic in ("policy.evaluated", "playbook.started", "run.resolved", "feedback.recorded")}
    assert named == dict.fromkeys(named, {"playbook_id": "payment-card-declined", "playbook_version": 1})
    assert len(named) == 4
    [triaged] = [e.payload for e in log if e.topic == "triage.completed"]
    assert (triaged["suggested_playbook_id"], triaged["suggested_playbook_version"]) == ("payment-card-declined", 1)


async def test_a_large_amount_pauses_with_the_reason_and_what_to_send(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    run = await start(engine, clock, amount="7500")
    assert run.status == "paused"
    assert await topics(sqlite_db, run) == PAUSED
    pause = run.state.pause
    expires = clock.now + timedelta(minutes=120)
    assert pause is not None and pause.gate == "ops_lead_approval"
    assert "amount 7500 USD is at or over 5000" in pause.reason
    assert (pause.requested_at, pause.expires_at) == (clock.now, expires)
    assert pause.payload_schema == DEFAULT_GATE_SCHEMA
    assert run.pause_expires_at == expires


async def test_approving_a_paused_run_completes_it(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    paused = await start(engine, clock, amount="7500")
    clock.advance(minutes=5)
    await engine.resume("acme", WORKFLOW, paused.id, {"decision": "approve"}, actor="user:lead")
    await settle(engine)
    run = await engine.runs.get("acme", paused.id)
    assert run.status == "completed" and run.pause_expires_at is None and run.state.pause is None
    assert await topics(sqlite_db, run) == PAUSED + ["dashboard.hitl_resumed"] + COMPLETED[3:]
    assert run.state.feedback.human_interventions == 1
    assert run.state.feedback.approval_required is True
    assert run.state.decisions[0].by == "user:lead"


async def test_a_reject_without_reason_is_refused_and_the_run_stays_paused(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    paused = await start(engine, clock, amount="7500")
    with pytest.raises(ValidationFailed) as info:
        await engine.resume("acme", WORKFLOW, paused.id, {"decision": "reject"}, actor="user:lead")
    assert info.value.code == "VALIDATION_FAILED"
    assert [d["field"] for d in info.value.details] == ["payload.reason"]
    run = await engine.runs.get("acme", paused.id)
    assert (run.status, run.version, run.state.pause) == ("paused", paused.version, paused.state.pause)
    assert await topics(sqlite_db, run) == PAUSED


async def test_a_reject_with_a_reason_ends_the_run(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    paused = await start(engine, clock, amount="7500")
    decision = {"decision": "reject", "reason": "customer already refunded"}
    resumed = await engine.resume("acme", WORKFLOW, paused.id, decision, actor="user:lead")
    await settle(engine)
    run = await engine.runs.get("acme", paused.id)
    assert resumed.status == run.status == "rejected"
    assert await topics(sqlite_db, run) == PAUSED + ["dashboard.hitl_resumed", "run.rejected", "feedback.recorded"]
    assert run.state.feedback.outcome == "rejected"


async def test_a_second_resume_is_not_paused_and_an_unknown_run_is_not_found(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    paused = await start(engine, clock, amount="7500")
    await engine.resume("acme", WORKFLOW, paused.id, {"decision": "approve"}, actor="user:lead")
    with pytest.raises(RunNotPaused):
        await engine.resume("acme", WORKFLOW, paused.id, {"decision": "approve"}, actor="user:lead")
    await settle(engine)
    for tenant, workflow, run_id in [("acme", WORKFLOW, "run_nope"), ("globex", WORKFLOW, paused.id),
                                     ("acme", "other_workflow", paused.id)]:
        with pytest.raises(RunNotFound):
            await engine.resume(tenant, workflow, run_id, {"decision": "approve"}, actor="user:lead")
    assert (await topics(sqlite_db, paused)).count("dashboard.hitl_resumed") == 1


async def test_two_racing_resumes_apply_one_decision(sqlite_db, engines, clock) -> None:
    engine = await engines(sqlite_db)
    paused = await start(engine, clock, amount="7500")
    outcomes = await asyncio.gather(
        engine.resume("acme", WORKFLOW, paused.id, {"decision": "approve"}, actor="user:lead"),
        engine.resume("acme", WORKFLOW, paused.id, {"decision": "reject", "reason": "no"}, actor="user:cfo"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["RunNotPaused", "RunRecord"]
    await settle(engine)
    run = await engine.runs.get("acme", paused.id)
    assert run.state.human_interventions == 1
    assert (await topics(sqlite_db, run)).count("dashboard.hitl_resumed") == 1


async def test_a_restart_finishes_runs_left_mid_pipeline_exactly_once(sqlite_db, engines, clock, catalog) -> None:
    first = await engines(sqlite_db)
    paused = await start(first, clock, amount="7500")
    await first.stop()
    writes = []
    for run_id, stop_after_triage in [("run_01received", False), ("run_02triaged", True)]:
        run = RunRecord(
            id=run_id, tenant_id="acme", workflow_id=WORKFLOW, status="received", trigger_type="api",
            trigger_ref=None, started_by="user:ana", version=1, last_seq=0, exception=card_declined(clock),
            state=new_state(), sla_deadline=None, pause_expires_at=None, created_at=clock.now, updated_at=clock.now,
        )
        t = Transition(run, clock.now)
        t.emit(Topic.RUN_RECEIVED, "user:ana", {"trigger_type": "api", "exception": run.exception})
        if stop_after_triage:
            triage_stage(t, catalog)
        writes.append(t.write(is_new=True))
    assert [w.run.status for w in writes] == ["received", "triaged"]
    assert not any(isinstance(o, Exception) for o in await write_batch(sqlite_db, writes))

    second = await engines(sqlite_db)
    await settle(second)
    assert engines.recovered[second] == 2  # the paused run waits for a human, it is not picked up
    for write in writes:
        run = await second.runs.get("acme", write.run.id)
        assert run.status == "completed"
        assert await topics(sqlite_db, run) == COMPLETED
    assert (await second.runs.get("acme", paused.id)).status == "paused"
    await second.stop()
    third = await engines(sqlite_db)
    await settle(third)
    assert engines.recovered[third] == 0
    assert await topics(sqlite_db, writes[0].run) == COMPLETED


class CheckingBus(InProcessBus):
    """Asserts, at the moment of publishing, that every event is already committed."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.published: list[int] = []

    def publish(self, events: Any) -> None:
        with sqlite3.connect(self.path) as conn:
            stored = {row[0] for row in conn.execute("SELECT id FROM events")}
        assert {e.id for e in events} <= stored, "an event was published before it was committed"
        self.published.extend(e.id for e in events)
        super().publish(events)


async def test_subscribers_only_see_committed_events(sqlite_db, engines, clock, tmp_path: Path) -> None:
    bus = CheckingBus(tmp_path / "autopilot.db")
    subscription = bus.subscribe(["run.*", "playbook.#"], tenant_id="acme")
    engine = await engines(sqlite_db, bus)
    run = await start(engine, clock)
    subscription.close()
    seen = [e async for e in subscription]
    log = await EventRepository(sqlite_db).for_run("acme", run.id)
    assert bus.published == [e.id for e in log]
    assert [e.id for e in seen] == [e.id for e in log if e.topic.startswith(("run.", "playbook."))]
    assert [e.topic for e in seen][0] == "run.received" and seen[-1].topic == "run.completed"
