"""The feedback digest: Feedback's records of the runs that ended inside the window, per playbook
and per workflow, stored as an event on the digest's own run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from domain.run_state import StepRecord, StepStatus, new_state
from domain.topics import Topic
from eventbus import InProcessBus
from pipeline import feedback_digest as digest_module
from pipeline.engine import PipelineEngine
from pipeline.feedback_digest import DigestParams, percentile
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobRunner
from pipeline.outcomes import fail
from pipeline.stages import policy_stage, triage_stage
from pipeline.start_request import StartRequest
from pipeline.transition import Transition
from store.events import EventRepository
from store.records import RunRecord
from store.writer import write_batch
from tests.stored import stored_run

WORKFLOW = "exception_pipeline"
CARD = "payment-card-declined"
RETRY = "payment-processor-retry"


def payment(code: str, amount: str) -> dict[str, Any]:
    return {"source": "stripe", "domain": "payments", "type": "payment.failed", "code": code, "amount": amount,
            "currency": "USD", "context": {"customer_email": "maria@example.com"}}


class Scene:
    def __init__(self, db: AsyncEngine, engine: PipelineEngine, runner: JobRunner, clock: Any) -> None:
        self.db, self.engine, self.runner, self.clock = db, engine, runner, clock

    async def start(self, code: str = "card_declined", amount: str = "42.50", tenant: str = "acme") -> RunRecord:
        run = await self.engine.start_run(StartRequest(tenant, WORKFLOW, payment(code, amount), actor="user:ana",
                                                       trigger_type="api"))
        await asyncio.wait_for(self.engine.drain(), timeout=30)
        return await stored_run(self.engine.runs, tenant, run.id)

    async def failed(self, name: str, reason: str, minutes: float, *, policy: bool = True,
                     steps_done: int = 0) -> None:
        """A run started ``minutes`` ago that fails now (as a step that broke would leave it)."""
        created = self.clock.now - timedelta(minutes=minutes)
        run = RunRecord(
            id=f"run_{name}", tenant_id="acme", workflow_id=WORKFLOW, status="received", trigger_type="api",
            trigger_ref=None, started_by="user:ana", version=1, last_seq=0, exception=payment("card_declined", "9"),
            state=new_state(), sla_deadline=None, pause_expires_at=None, created_at=created, updated_at=created,
        )
        t = Transition(run, self.clock.now)
        t.emit(Topic.RUN_RECEIVED, "user:ana", {"trigger_type": "api", "exception": run.exception})
        triage_stage(t, self.engine.catalog)
        if policy:
            policy_stage(t, self.engine.catalog)
            t.state.total_steps = 3
            t.state.steps = {f"s{i}": StepRecord(status=StepStatus.COMPLETED, order=i + 1) for i in range(steps_done)}
        fail(t, reason, "agent:resolution")
        assert not any(isinstance(o, Exception) for o in await write_batch(self.db, [t.write(is_new=True)]))

    async def digest(self, params: dict[str, Any]) -> tuple[RunRecord, dict[str, Any]]:
        request = StartRequest("acme", "feedback_digest", params, actor="system:test", trigger_type="manual")
        run = await self.runner.launch(request, "feedback_digest")
        final = await asyncio.wait_for(self.runner.wait(run.id), timeout=30)
        assert final is not None
        assert final.status == "completed", final.state.error
        log = await EventRepository(self.db).for_run("acme", run.id)
        [digest] = [e.payload for e in log if e.topic == "feedback.digest"]
        return final, digest


@pytest.fixture
async def scene(catalog: Catalog, clock: Any, tmp_path) -> AsyncIterator[Any]:
    made: list[Scene] = []

    async def make(db: AsyncEngine) -> Scene:
        engine = PipelineEngine(db, InProcessBus(), catalog, clock=clock, workers=4)
        await engine.start()
        jobs = JobRunner(engine, db, catalog, JOB_KINDS, data_dir=tmp_path, clock=clock, executor=engine.executor)
        s = Scene(db, engine, jobs, clock)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.runner.stop()
        await s.engine.stop()


async def test_a_digest_aggregates_the_runs_that_ended_in_its_window(db: AsyncEngine, scene, clock) -> None:
    s = await scene(db)  # the clock starts at 09:00; the window is [10:00, 12:00)
    await s.start()  # ends 09:00: before the window
    clock.advance(hours=1)
    small = await s.start()  # ends 10:00, the window's first instant
    retry = await s.start("gateway_error", "310.00")
    approved, rejected, waiting = [await s.start(amount="7500") for _ in range(3)]
    assert {approved.status, rejected.status, waiting.status} == {"paused"}
    await s.start(tenant="globex")  # another tenant's run is not counted
    clock.advance(minutes=30)
    await s.engine.resume("acme", WORKFLOW, approved.id, {"decision": "approve"}, actor="user:lead")
    await s.failed("f1", "ledger unavailable", 30, steps_done=1)
    clock.advance(minutes=30)
    await s.engine.resume("acme", WORKFLOW, rejected.id, {"decision": "reject", "reason": "refunded"},
                          actor="user:lead")
    await s.failed("f2", "ledger unavailable", 30, steps_done=2)
    await s.failed("f3", "bank timed out", 60, policy=False)
    ingest = StartRequest("acme", "ingest", {"source": "nope"}, actor="system:test", trigger_type="manual")
    await s.runner.wait((await s.runner.launch(ingest, "ingest")).id)  # a job's run: no Feedback, not counted
    clock.advance(hours=1)
    await s.start()  # ends 12:00: the window's end is not in it
    await asyncio.wait_for(s.engine.drain(), timeout=30)

    run, digest = await s.digest({"window_hours": 2, "until": "2026-11-24T13:00:00+01:00"})
    assert (digest["window_start"], digest["window_end"]) == ("2026-11-24T10:00:00+00:00", "2026-11-24T12:00:00+00:00")
    assert run.state.summary == {"window_start": digest["window_start"], "window_end": digest["window_end"],
                                 "runs": 7, "playbooks": 3, "actions_not_logged": 0}
    assert digest["runs"] == 7 and set(digest["by_workflow"]) == {WORKFLOW}
    assert set(digest["by_playbook"]) == {CARD, RETRY, "(none)"}

    card = digest["by_playbook"][CARD]  # small (0s), approved (30 min), rejected (1 h), f1, f2 (30 min each)
    assert card["runs"] == 5
    assert card["outcomes"] == {"completed": 2, "failed": 2, "rejected": 1} == card["statuses"]
    assert card["duration_seconds"] == {"p50": 1800.0, "p95": 3600.0, "avg": 1800.0}
    assert card["hitl_rate"] == 0.4  # approved and rejected went through the gate
    assert card["steps_completed_ratio"] == round((3 + 3 + 1 + 2) / (3 + 3 + 0 + 3 + 3), 4)
    assert card["top_failure_reasons"] == [{"reason": "ledger unavailable", "count": 2}]
    confidence = small.state.triage.confidence
    assert card["triage_confidence_by_outcome"] == {"completed": confidence, "failed": confidence,
                                                    "rejected": confidence}

    assert digest["by_playbook"][RETRY]["runs"] == 1
    assert digest["by_playbook"][RETRY]["triage_confidence_by_outcome"] == {
        "completed": retry.state.triage.confidence}
    none = digest["by_playbook"]["(none)"]
    assert (none["runs"], none["outcomes"], none["steps_completed_ratio"]) == (1, {"failed": 1}, None)
    assert none["top_failure_reasons"] == [{"reason": "bank timed out", "count": 1}]

    pipeline = digest["by_workflow"][WORKFLOW]
    assert pipeline["runs"] == 7
    assert pipeline["outcomes"] == {"completed": 3, "failed": 3, "rejected": 1}
    assert pipeline["top_failure_reasons"] == [{"reason": "ledger unavailable", "count": 2},
                                               {"reason": "bank timed out", "count": 1}]
    assert pipeline["hitl_rate"] == round(2 / 7, 4)

    again_run, again = await s.digest({"window_hours": 2, "until": "2026-11-24T12:00:00Z"})
    assert again == digest and again_run.id != run.id  # a fixed window gives the same digest


async def test_without_until_the_window_ends_when_the_job_starts(sqlite_db, scene, clock) -> None:
    s = await scene(sqlite_db)
    await s.start()
    clock.advance(hours=3)
    await s.start()
    _, recent = await s.digest({"window_hours": 1})  # launched at 12:00: [11:00, 12:00) holds nothing
    assert (recent["window_end"], recent["runs"], recent["by_playbook"]) == ("2026-11-24T12:00:00+00:00", 0, {})
    clock.advance(seconds=1)
    _, both = await s.digest({"window_hours": 4})
    assert both["runs"] == 2 and both["by_playbook"][CARD]["duration_seconds"] == {"p50": 0.0, "p95": 0.0, "avg": 0.0}


async def test_runs_are_read_a_chunk_at_a_time(sqlite_db, scene, clock, monkeypatch) -> None:
    s = await scene(sqlite_db)
    for _ in range(7):
        await s.start()
    clock.advance(minutes=1)
    chunks: list[int] = []
    real = digest_module.finished_runs

    async def spy(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for chunk in real(*args, **{**kwargs, "chunk": 3}):
            chunks.append(len(chunk))
            yield chunk

    monkeypatch.setattr(digest_module, "finished_runs", spy)
    _, digest = await s.digest({})
    assert chunks == [3, 3, 1] and digest["runs"] == 7


def test_params_are_checked() -> None:
    assert DigestParams().window_hours == 24
    for bad in ({"window_hours": 0}, {"window_hours": 24 * 367}, {"until": "2026-11-24T12:00:00"}, {"x": 1}):
        with pytest.raises(ValueError):
            DigestParams.model_validate(bad)


def test_percentiles_are_nearest_rank() -> None:
    assert [percentile([1.0, 2.0, 3.0, 4.0], p) for p in (50, 95, 100)] == [2.0, 4.0, 4.0]
    assert percentile([7.0], 50) == 7.0

