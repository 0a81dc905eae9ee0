"""The SLA sweep on a real database: severity raised once per SLA level, expired approvals handled
as each policy says (reject, approve, reassign and then), races with humans and other tenants."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.views import run_summary
from config.catalog import Catalog
from config.policies import ExpiryPolicy
from domain.errors import Forbidden
from domain.run_state import Escalation, RunState, TriageResult, new_state, replaced
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.escalation import mark_sla
from pipeline.hitl import Decider
from pipeline.job_kinds import JOB_KINDS
from pipeline.jobs import JobRunner
from pipeline.sla_sweep import SlaSweepParams
from pipeline.start_request import StartRequest
from pipeline.transition import Transition
from store.events import EventRepository
from store.records import EventRecord, RunRecord

WORKFLOW = "exception_pipeline"
ACTOR = "workflow:sla_sweep"


def with_gate(catalog: Catalog, tenant: str, **gate: Any) -> Catalog:
    """``catalog`` with ``tenant``'s approval gate changed (``on_expiry`` given as a dict)."""
    policy = catalog.policies.for_tenant(tenant)
    if "on_expiry" in gate:
        gate["on_expiry"] = ExpiryPolicy.model_validate(gate["on_expiry"])
    changed = policy.model_copy(update={"gate": policy.gate.model_copy(update=gate)})
    tenants = {**catalog.policies.tenants, tenant: changed}
    return replace(catalog, policies=catalog.policies.model_copy(update={"tenants": tenants}))


@dataclass
class Sweeper:
    db: AsyncEngine
    engine: PipelineEngine
    runner: JobRunner
    clock: Any

    async def start(self, tenant: str, amount: str, deadline_minutes: float = 3 * 24 * 60) -> RunRecord:
        exception = {
            "source": "stripe", "source_id": f"ch_{amount}", "domain": "payments", "type": "payment.failed",
            "code": "card_declined", "amount": amount, "currency": "USD",
            "sla_deadline": (self.clock.now + timedelta(minutes=deadline_minutes)).isoformat(),
        }
        run = await self.engine.start_run(StartRequest(tenant, WORKFLOW, exception, actor="user:ana",
                                                       trigger_type="api"))
        await asyncio.wait_for(self.engine.drain(), timeout=30)
        return await self.get(run)

    async def get(self, run: RunRecord) -> RunRecord:
        fresh = await self.engine.runs.get(run.tenant_id, run.id)
        assert fresh is not None
        return fresh

    async def events(self, run: RunRecord) -> list[EventRecord]:
        log = await EventRepository(self.db).for_run(run.tenant_id, run.id)
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        return log

    async def topics(self, run: RunRecord) -> list[str]:
        return [e.topic for e in await self.events(run)]

    async def sweep(self, tenant: str = "acme", **params: Any) -> RunRecord:
        request = StartRequest(tenant, "sla_sweep", params, actor="system:test", trigger_type="scheduled")
        job = await self.runner.launch(request, "sla_sweep")
        done = await asyncio.wait_for(self.runner.wait(job.id), timeout=30)
        assert done is not None
        await asyncio.wait_for(self.engine.drain(), timeout=30)
        return done


@pytest.fixture
async def sweepers(catalog: Catalog, clock: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Make an engine and a job runner on a database; all are stopped at the end."""
    made: list[Sweeper] = []

    async def make(db: AsyncEngine, cat: Catalog = catalog, job_catalog: Catalog | None = None) -> Sweeper:
        engine = PipelineEngine(db, InProcessBus(), cat, clock=clock, workers=2)
        await engine.start()
        runner = JobRunner(
            engine, db, job_catalog or cat, JOB_KINDS, data_dir=tmp_path, clock=clock, executor=engine.executor
        )
        made.append(Sweeper(db, engine, runner, clock))
        return made[-1]

    yield make
    for sweeper in made:
        await sweeper.runner.stop()
        await sweeper.engine.stop()


def counts(job: RunRecord) -> dict[str, int]:
    assert job.state.summary is not None, job.state.error
    return {k: v for k, v in job.state.summary["counts"].items() if v}


async def test_an_sla_at_risk_then_breached_raises_severity_once_per_level(db, sweepers, clock) -> None:
    s = await sweepers(db)
    run = await s.start("globex", "15000", deadline_minutes=100)  # pauses at globex's 10000; severity medium
    later = await s.start("globex", "15000", deadline_minutes=24 * 60)
    assert (run.status, run.state.triage.severity) == ("paused", "medium")
    paused_topics = await s.topics(run)

    assert counts(await s.sweep("globex")) == {}  # 100 minutes left: not near yet
    assert await s.topics(run) == paused_topics

    clock.advance(minutes=80)
    job = await s.sweep("globex")
    marked = await s.get(run)
    assert marked.state.severity == "high" and marked.state.triage.severity == "medium"
    assert marked.state.sla.level == "at_risk" and run_summary(marked).severity == "high"
    log = (await s.events(marked))[len(paused_topics):]
    assert [(e.topic, e.actor) for e in log] == [("sla.at_risk", ACTOR), ("notification.sent", ACTOR)]
    assert log[0].payload == {
        "deadline": run.sla_deadline.isoformat(), "minutes_remaining": 20.0, "severity_from": "medium",
        "severity_to": "high", "sweep_run_id": job.id,
    }
    assert log[1].payload["channel"] == "sla" and log[1].payload["target"] == ["role:approver", "role:admin"]
    assert log[1].payload["sweep_run_id"] == job.id and "due in 20 min" in log[1].payload["message"]
    assert counts(job) == {"runs_checked": 1, "at_risk": 1}
    assert job.status == "completed"
    assert [e.topic for e in await s.events(job)] == ["run.received", "sla.at_risk", "workflow.completed"]
    summary = (await s.events(job))[-1].payload
    assert (summary["now"], summary["near_minutes"]) == (clock.now.isoformat(), 30)
    assert (await s.events(job))[1].payload["run_id"] == run.id

    assert counts(await s.sweep("globex")) == {}  # at risk only once (a marked run is not even read again)
    assert (await s.get(run)).last_seq == marked.last_seq

    clock.advance(minutes=30)
    job = await s.sweep("globex")
    breached = await s.get(run)
    assert (breached.state.severity, breached.state.sla.level) == ("critical", "breached")
    assert breached.state.sla.at_risk_at is not None and breached.status == "paused"
    log = (await s.events(breached))[marked.last_seq:]
    assert [e.topic for e in log] == ["sla.breached", "notification.sent"]
    assert (log[0].payload["severity_from"], log[0].payload["minutes_overdue"]) == ("high", 10.0)
    assert counts(job) == {"runs_checked": 1, "breached": 1}

    clock.advance(minutes=60)
    assert counts(await s.sweep("globex")) == {}  # breached only once
    assert (await s.get(run)).last_seq == breached.last_seq
    assert (await s.get(later)).state.severity is None


async def test_a_run_already_past_its_sla_is_breached_at_once_and_ended_runs_are_left(sqlite_db, sweepers, clock):
    s = await sweepers(sqlite_db)
    late = await s.start("acme", "7500", deadline_minutes=-5)  # triage already made it critical
    done = await s.start("acme", "42.50", deadline_minutes=10)
    assert (late.status, late.state.triage.severity, done.status) == ("paused", "critical", "completed")
    clock.advance(minutes=20)
    job = await s.sweep("acme", near_minutes=0)
    assert counts(job) == {"runs_checked": 1, "breached": 1}
    log = (await s.events(late))[late.last_seq:]
    assert [e.topic for e in log] == ["sla.breached", "notification.sent"]
    assert (log[0].payload["severity_from"], log[0].payload["severity_to"]) == ("critical", "critical")
    assert (await s.get(done)).last_seq == done.last_seq


async def test_an_expired_approval_is_rejected_with_the_policy_reason(db, sweepers, clock) -> None:
    s = await sweepers(db)
    run = await s.start("globex", "15000")
    clock.advance(minutes=239)
    assert counts(await s.sweep("globex")) == {}
    clock.advance(minutes=1)
    job = await s.sweep("globex")
    rejected = await s.get(run)
    assert (rejected.status, rejected.pause_expires_at) == ("rejected", None)
    log = (await s.events(rejected))[run.last_seq:]
    assert [e.topic for e in log] == ["approval.expired", "dashboard.hitl_resumed", "run.rejected", "feedback.recorded"]
    assert log[0].payload == {
        "gate": "policy_approval", "expired_at": run.pause_expires_at.isoformat(), "action": "reject",
        "escalated": False, "reason": "no decision within 4 hours", "sweep_run_id": job.id,
    }
    assert log[2].payload["reason"] == "no decision within 4 hours" and log[2].actor == ACTOR
    assert rejected.state.feedback.human_interventions == 0
    assert rejected.state.decisions[-1].automatic is True
    assert counts(job) == {"runs_checked": 1, "expired_rejected": 1}
    assert [e.topic for e in await s.events(job)] == ["run.received", "approval.expired", "workflow.completed"]
    assert counts(await s.sweep("globex")) == {}


async def test_an_expired_approval_is_approved_even_when_the_gate_wanted_two(db, sweepers, catalog, clock):
    lenient = with_gate(catalog, "acme", approvals_required=2,
                        on_expiry={"action": "approve", "reason": "small exposure: approved on expiry"})
    s = await sweepers(db, lenient)
    run = await s.start("acme", "7500")
    await s.engine.resume("acme", WORKFLOW, run.id, {"decision": "approve"}, actor="user:lead")
    half = await s.get(run)
    assert (half.status, len(half.state.pause.approvals)) == ("paused", 1)
    clock.advance(minutes=121)
    job = await s.sweep("acme")
    approved = await s.get(run)
    assert approved.status == "completed"
    log = (await s.events(approved))[half.last_seq:]
    assert [e.topic for e in log[:2]] == ["approval.expired", "dashboard.hitl_resumed"]
    assert log[-1].topic == "run.completed" and "playbook.completed" in [e.topic for e in log]
    assert log[0].payload["reason"] == "small exposure: approved on expiry"
    assert log[1].payload["approved_by"] == ["user:lead", ACTOR]
    assert approved.state.feedback.human_interventions == 1
    assert counts(job) == {"runs_checked": 1, "expired_approved": 1}


@pytest.mark.parametrize("then", ["reject", "approve", "wait"])
async def test_an_expired_approval_goes_to_the_escalation_queue_then_to_the_policy_then(
    db, sweepers, catalog, clock, then
) -> None:
    escalating = with_gate(catalog, "acme", on_expiry={
        "action": "reassign", "queue": "ops-escalations", "extend_minutes": 60, "then": then, "reason": "too late",
    })
    s = await sweepers(db, escalating)
    run = await s.start("acme", "7500")
    assert run.state.pause.deciders == ["role:approver", "role:admin"]
    clock.advance(minutes=125)
    job = await s.sweep("acme")
    escalated = await s.get(run)
    expires = clock.now + timedelta(minutes=60)
    assert (escalated.status, escalated.pause_expires_at) == ("paused", expires)
    pause = escalated.state.pause
    assert (pause.deciders, pause.expires_at) == (["queue:ops-escalations", "role:admin"], expires)
    assert pause.escalated == Escalation(at=clock.now, queue="ops-escalations",
                                         from_deciders=["role:approver", "role:admin"])
    log = (await s.events(escalated))[run.last_seq:]
    assert [e.topic for e in log] == ["approval.expired", "approval.escalated", "notification.sent"]
    assert log[0].payload["action"] == "reassign"
    assert log[1].payload == {"gate": "ops_lead_approval", "queue": "ops-escalations",
                              "from_deciders": ["role:approver", "role:admin"], "expires_at": expires.isoformat(),
                              "sweep_run_id": job.id}
    assert log[2].payload["target"] == ["queue:ops-escalations"]
    assert counts(job) == {"runs_checked": 1, "reassigned": 1}
    with pytest.raises(Forbidden):  # the original approvers no longer decide
        await s.engine.resume("acme", WORKFLOW, run.id, {"decision": "approve"}, actor="user:lead",
                              decider=Decider("user:lead", roles=frozenset({"approver"})))

    clock.advance(minutes=59)
    assert counts(await s.sweep("acme")) == {}
    assert (await s.get(run)).last_seq == escalated.last_seq
    clock.advance(minutes=1)
    job = await s.sweep("acme")
    final = await s.get(run)
    log = (await s.events(final))[escalated.last_seq:]
    assert log[0].topic == "approval.expired"
    assert (log[0].payload["action"], log[0].payload["escalated"]) == (then, True)
    if then == "reject":
        assert (final.status, log[2].payload["reason"]) == ("rejected", "too late")
        assert counts(job) == {"runs_checked": 1, "expired_rejected": 1}
    elif then == "approve":
        assert (final.status, log[-1].topic) == ("completed", "run.completed")
        assert counts(job) == {"runs_checked": 1, "expired_approved": 1}
    else:
        assert (final.status, final.pause_expires_at, len(log)) == ("paused", None, 1)
        assert final.state.pause.escalated.waiting_since == clock.now
        assert counts(job) == {"runs_checked": 1, "left_waiting": 1}
        clock.advance(days=1)
        assert counts(await s.sweep("acme")) == {}
        assert (await s.get(run)).last_seq == final.last_seq
        await s.engine.resume("acme", WORKFLOW, run.id, {"decision": "approve"}, actor="user:esc",
                              decider=Decider("user:esc", queues=frozenset({"ops-escalations"})))
        assert (await s.get(run)).status == "completed"


async def test_the_policy_the_pause_was_made_with_wins_over_the_tenants_current_one(
    sqlite_db, sweepers, catalog, clock
) -> None:
    rejecting = with_gate(catalog, "acme", on_expiry={"action": "reject", "reason": "policy changed"})
    s = await sweepers(sqlite_db, catalog, job_catalog=rejecting)
    kept = await s.start("acme", "7500")
    old = await s.start("acme", "8000")

    def drop_on_expiry(t: Any) -> None:  # a pause made before pauses recorded their policy
        t.state.pause = replaced(t.state.pause, on_expiry=None)

    await s.engine.change_run("acme", old.id, drop_on_expiry)
    clock.advance(minutes=121)
    job = await s.sweep("acme")
    assert counts(job) == {"runs_checked": 2, "reassigned": 1, "expired_rejected": 1}
    assert (await s.get(kept)).status == "paused"
    assert (await s.get(old)).status == "rejected"
    assert [e.payload["reason"] for e in await s.events(old) if e.topic == "run.rejected"] == ["policy changed"]


async def test_a_run_a_human_decides_while_the_sweep_runs_is_left_alone(db, sweepers, clock) -> None:
    s = await sweepers(db)
    expiring = await s.start("globex", "15000", deadline_minutes=250)
    near = await s.start("globex", "20000", deadline_minutes=260)
    clock.advance(minutes=241)
    runs = s.engine.runs
    real_expired, real_due = runs.expired_pauses, runs.sla_due

    async def expired_then_decided(*args: Any, **kwargs: Any) -> list[RunRecord]:
        found = await real_expired(*args, **kwargs)
        await s.engine.resume("globex", WORKFLOW, expiring.id, {"decision": "approve"}, actor="user:lead")
        return found

    async def due_then_decided(*args: Any, **kwargs: Any) -> list[RunRecord]:
        found = await real_due(*args, **kwargs)
        await s.engine.resume("globex", WORKFLOW, near.id, {"decision": "reject", "reason": "no"}, actor="user:lead")
        return found

    runs.expired_pauses, runs.sla_due = expired_then_decided, due_then_decided
    job = await s.sweep("globex")
    assert [r.id for r in await real_expired("globex", clock.now)] == []
    assert (await s.get(expiring)).status == "completed"
    assert (await s.get(near)).status == "rejected"
    for run in (expiring, near):
        topics = await s.topics(run)
        assert not [t for t in topics if t.startswith(("approval.", "sla.", "notification."))], topics
    assert counts(job) == {"runs_checked": 2, "unchanged": 2}


async def test_overlapping_sweeps_act_on_an_expired_approval_once(db, sweepers, clock) -> None:
    s = await sweepers(db)
    run = await s.start("acme", "7500")
    clock.advance(minutes=121)
    real_expired = s.engine.runs.expired_pauses
    inner: list[Any] = []  # None while the inner sweep runs (so it does not start another), then its job

    async def another_sweep_acts_first(*args: Any, **kwargs: Any) -> list[RunRecord]:
        found = await real_expired(*args, **kwargs)
        if not inner:
            inner.append(None)
            inner[0] = await s.sweep("acme")
        return found

    s.engine.runs.expired_pauses = another_sweep_acts_first
    outer = await s.sweep("acme")
    assert counts(inner[0]) == {"runs_checked": 1, "reassigned": 1}
    assert counts(outer) == {"runs_checked": 1, "unchanged": 1}  # the extended expiry is in the future now
    topics = await s.topics(run)
    assert (topics.count("approval.expired"), topics.count("approval.escalated")) == (1, 1)
    assert (await s.get(run)).status == "paused"


async def test_a_tenants_sweep_never_touches_another_tenants_runs(db, sweepers, clock) -> None:
    s = await sweepers(db)
    theirs = await s.start("globex", "15000", deadline_minutes=10)
    ours = await s.start("acme", "7500", deadline_minutes=10)
    clock.advance(minutes=300)
    job = await s.sweep("acme")
    assert counts(job) == {"runs_checked": 1, "reassigned": 1, "breached": 1}
    assert (await s.get(theirs)).last_seq == theirs.last_seq
    reassigned = await s.get(ours)
    notices = [e.payload for e in await s.events(reassigned) if e.topic == "notification.sent"]
    assert [n["channel"] for n in notices] == ["approval_escalation", "sla"]
    assert notices[1]["target"] == ["queue:ops-escalations", "role:admin"]  # the SLA warning goes to the new deciders
    job = await s.sweep("globex")
    assert counts(job) == {"runs_checked": 1, "expired_rejected": 1}
    assert (await s.get(theirs)).status == "rejected"
    assert (await s.get(ours)).last_seq == reassigned.last_seq


async def test_the_sweep_checks_its_parameters(sqlite_db, sweepers) -> None:
    assert SlaSweepParams().model_dump() == {"near_minutes": 30, "limit": 500}
    for bad in ({"limit": 0}, {"limit": 10001}, {"near_minutes": -1}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            SlaSweepParams.model_validate(bad)
    s = await sweepers(sqlite_db)
    job = await s.sweep("acme", near_minutes="soon")
    assert job.status == "failed" and "near_minutes" in job.state.error


async def test_the_limit_bounds_a_sweep_most_urgent_first(sqlite_db, sweepers, clock) -> None:
    s = await sweepers(sqlite_db)
    runs = [await s.start("globex", "15000", deadline_minutes=-1 - i) for i in range(3)]
    job = await s.sweep("globex", limit=2)
    assert counts(job) == {"runs_checked": 2, "breached": 2} and job.state.summary["limit_reached"]
    assert [(await s.get(r)).state.sla is not None for r in runs] == [False, True, True]
    job = await s.sweep("globex", limit=4)
    assert counts(job) == {"runs_checked": 1, "breached": 1}  # the two already breached are not read again
    assert not job.state.summary["limit_reached"]


async def test_runs_already_breached_do_not_crowd_newer_ones_out_of_the_sweep(db, sweepers, clock) -> None:
    """Breached runs stay open (paused, say) and keep the earliest deadlines: with the limit
    filled by them, a run that came due later must still be marked."""
    s = await sweepers(db)
    early = [await s.start("globex", "15000", deadline_minutes=10 + i) for i in range(2)]
    late = await s.start("globex", "15000", deadline_minutes=60)
    assert {r.status for r in [*early, late]} == {"paused"}
    clock.advance(minutes=20)
    assert counts(await s.sweep("globex", limit=2)) == {"runs_checked": 2, "breached": 2}
    clock.advance(minutes=50)  # the late one is past its deadline too now
    job = await s.sweep("globex", limit=2)
    sla = (await s.get(late)).state.sla
    assert sla is not None and sla.level == "breached", counts(job)


LOW = TriageResult(
    source="rules", rule_id=None, domain="payments", exception_type="payment.failed", severity="low",
    confidence=0.9, sla_minutes_remaining=None, tags=[], reasons=[], suggested_playbook_id=None,
    suggested_playbook_version=None, playbook_reasoning=None, candidates=[],
)


@pytest.mark.parametrize(("status", "state", "marked"), [
    ("resolving", new_state(triage=LOW), True),
    ("resolving", new_state(triage=LOW, pending_calls=["call"]), False),  # its call's result is due
    ("received", new_state(), False),  # not triaged yet: the next sweep sees it
    ("completed", new_state(triage=LOW), False),
])
def test_runs_mid_call_untriaged_or_ended_are_not_marked(clock, status, state: RunState, marked) -> None:
    run = RunRecord(
        id="run_1", tenant_id="acme", workflow_id=WORKFLOW, status=status, trigger_type="api", trigger_ref=None,
        started_by="user:ana", version=3, last_seq=5, exception={}, state=state,
        sla_deadline=clock.now + timedelta(minutes=5), pause_expires_at=None, created_at=clock.now,
        updated_at=clock.now,
    )
    t, before = Transition(run, clock.now), copy.deepcopy(state)
    outcome = mark_sla(t, clock.now, timedelta(minutes=30), ACTOR, "run_sweep")
    assert (outcome is not None, t.seq > run.last_seq, t.state.severity is not None) == (marked, marked, marked)
    assert run.state == before  # the run as read is not changed in place
