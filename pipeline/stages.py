"""The four agents as stages. Each advances a ``Transition`` from the status before it to the
next one, so it is idempotent on (run, stage). Stages here are pure and local: the engine
chains them in memory and commits once the run must wait, ends, or reaches a stage that acts
on the outside world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.policy import evaluate_policy
from agents.resolution import playbook_fields, walk_playbook
from agents.triage import triage
from config.catalog import Catalog
from domain.run_state import TriageResult, replaced
from domain.state_codec import as_payload
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.hitl import STEP_FAILED_GATE, pause
from pipeline.outcomes import fail, record_feedback
from pipeline.transition import Transition

Stage = Callable[[Transition, Catalog], None]


def triage_stage(t: Transition, catalog: Catalog) -> None:
    record_triage(t, triage(t.run.exception, catalog.triage, catalog.playbooks.values(), t.now))


def record_triage(t: Transition, result: TriageResult) -> None:
    """Triage's result on the run; the engine calls this itself when the model helped classify."""
    t.state.triage = result
    t.status = RunStatus.TRIAGED
    t.emit(Topic.TRIAGE_COMPLETED, "agent:triage", as_payload(result))


def policy_stage(t: Transition, catalog: Catalog) -> None:
    assert t.state.triage is not None, "policy runs after triage"
    decision = evaluate_policy(t.run.tenant_id, t.state.triage, t.run.exception, catalog, t.state.requested_playbook)
    t.state.policy = decision
    t.status = RunStatus.POLICY_EVALUATED
    t.emit(Topic.POLICY_EVALUATED, "agent:policy", as_payload(decision))
    if decision.requires_approval:
        gate = catalog.policies.for_tenant(t.run.tenant_id).gate
        pause(t, gate, decision.approval_reasons, "agent:policy")


def _scope(t: Transition) -> dict[str, Any]:
    run, state = t.run, t.state
    return {
        "exception": {**run.exception, "id": run.id},
        "run": {
            "id": run.id,
            "workflow_id": run.workflow_id,
            "trigger_type": run.trigger_type,
            "severity": state.triage.severity if state.triage else None,
            "sla_minutes_remaining": state.triage.sla_minutes_remaining if state.triage else None,
            "playbook_id": state.policy.playbook_id if state.policy else None,
        },
    }


def resolution_stage(t: Transition, catalog: Catalog) -> None:
    key = t.state.playbook_key
    if key is None:
        t.status = RunStatus.RESOLVED
        t.emit(Topic.RUN_RESOLVED, "agent:resolution", {"note": "approved by a human without a playbook"})
        return
    playbook = catalog.playbook(key)
    if playbook is None:
        fail(t, f"playbook {key} is no longer in the library", "agent:resolution")
        return
    budget = t.granted_steps if playbook.mode == "stepwise" else None
    outcome = walk_playbook(playbook, _scope(t), t.state.steps, t.now, budget)
    t.granted_steps = 0
    t.state.steps = outcome.progress
    t.state.total_steps = len(playbook.steps)
    if outcome.run_changes:
        t.state = replaced(t.state, **outcome.run_changes)
    for topic, payload in outcome.events:
        t.emit(topic, "agent:resolution", payload)
    t.notify(outcome.notifications, catalog.channels.refusal)
    if outcome.status == "resolved":
        t.status = RunStatus.RESOLVED
        t.emit(Topic.RUN_RESOLVED, "agent:resolution", playbook_fields(playbook))
    elif outcome.status == "calling":
        t.state.pending_calls = outcome.calling_steps  # the engine calls them outside any transaction
        t.status = RunStatus.RESOLVING
    elif outcome.status == "awaiting_next_step":
        t.state.awaiting_next_step = True  # a run-next-step call takes it
        t.status = RunStatus.RESOLVING
        step = playbook.step(outcome.next_step or "")
        t.emit(Topic.PLAYBOOK_NEXT_STEP_READY, "agent:resolution", {
            **playbook_fields(playbook), "step_id": outcome.next_step, "step_name": step.name if step else None,
            "step_order": playbook.steps.index(step) + 1 if step else None,
        })
    elif outcome.status == "waiting_for_input":
        t.state.waiting_steps = outcome.waiting_steps
        if t.status != RunStatus.WAITING_FOR_INPUT:
            t.emit(Topic.RUN_WAITING_FOR_INPUT, "agent:resolution", {"steps": outcome.waiting_steps})
        t.status = RunStatus.WAITING_FOR_INPUT
    elif outcome.status == "paused":
        gate = catalog.policies.for_tenant(t.run.tenant_id).gate.model_copy(update={"name": STEP_FAILED_GATE})
        pause(t, gate, [outcome.error or "a step failed"], "agent:resolution", step_id=outcome.failed_step)
    else:
        fail(t, outcome.error or "resolution failed", "agent:resolution")


def feedback_stage(t: Transition, catalog: Catalog) -> None:
    feedback = record_feedback(t, "completed")
    t.status = RunStatus.COMPLETED
    t.emit(Topic.RUN_COMPLETED, "agent:feedback", {"duration_seconds": feedback.duration_seconds})


STAGES: dict[str, Stage] = {
    RunStatus.RECEIVED: triage_stage,
    RunStatus.TRIAGED: policy_stage,
    RunStatus.POLICY_EVALUATED: resolution_stage,
    RunStatus.RESUMED: resolution_stage,
    RunStatus.RESOLVING: resolution_stage,
    RunStatus.RESOLVED: feedback_stage,
}
