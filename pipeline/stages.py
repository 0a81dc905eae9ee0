"""The four agents as stages. Each advances a ``Transition`` from the status before it to the
next one, so it is idempotent on (run, stage). Stages here are pure and local: the engine
chains them in memory and commits once the run must wait, ends, or reaches a stage that acts
on the outside world."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.policy import evaluate_policy
from agents.resolution import walk_playbook
from agents.triage import triage
from config.catalog import Catalog
from pipeline.hitl import STEP_FAILED_GATE, pause
from pipeline.outcomes import fail, record_feedback
from domain.statuses import RunStatus
from pipeline.transition import Transition

Stage = Callable[[Transition, Catalog], None]


def triage_stage(t: Transition, catalog: Catalog) -> None:
    record_triage(t, triage(t.run.exception, catalog.triage, catalog.playbooks.values(), t.now))


def record_triage(t: Transition, result: dict[str, Any]) -> None:
    """Triage's result on the run; the engine calls this itself when the model helped classify."""
    t.state["triage"] = result
    t.status = RunStatus.TRIAGED
    t.emit("triage.completed", "agent:triage", result)


def policy_stage(t: Transition, catalog: Catalog) -> None:
    decision = evaluate_policy(t.run.tenant_id, t.state["triage"], t.run.exception, catalog)
    t.state["policy"] = decision
    t.status = RunStatus.POLICY_EVALUATED
    t.emit("policy.evaluated", "agent:policy", decision)
    if decision["requires_approval"]:
        gate = catalog.policies.for_tenant(t.run.tenant_id).gate
        pause(t, gate, decision["approval_reasons"], "agent:policy")


def _scope(t: Transition) -> dict[str, Any]:
    run, triage_result = t.run, t.state.get("triage", {})
    return {
        "exception": {**run.exception, "id": run.id},
        "run": {
            "id": run.id,
            "workflow_id": run.workflow_id,
            "trigger_type": run.trigger_type,
            "severity": triage_result.get("severity"),
            "sla_minutes_remaining": triage_result.get("sla_minutes_remaining"),
            "playbook_id": t.state.get("policy", {}).get("playbook"),
        },
    }


def resolution_stage(t: Transition, catalog: Catalog) -> None:
    key = t.state["policy"].get("playbook")
    playbook = catalog.playbook(key) if key else None
    if key is None:
        t.status = RunStatus.RESOLVED
        t.emit("run.resolved", "agent:resolution", {"note": "approved by a human without a playbook"})
        return
    if playbook is None:
        fail(t, f"playbook {key} is no longer in the library", "agent:resolution")
        return
    outcome = walk_playbook(playbook, _scope(t), t.state.get("steps", {}), t.now)
    t.state["steps"] = outcome.progress
    t.state["steps_total"] = len(playbook.steps)
    t.state.update(outcome.run_changes)
    for topic, payload in outcome.events:
        t.emit(topic, "agent:resolution", payload)
    if outcome.status == "resolved":
        t.status = RunStatus.RESOLVED
        t.emit("run.resolved", "agent:resolution", {"playbook": key})
    elif outcome.status == "calling":
        t.state["pending_calls"] = outcome.calling_steps  # the engine calls them outside any transaction
        t.status = RunStatus.RESOLVING
    elif outcome.status == "waiting_for_input":
        t.state["waiting_steps"] = outcome.waiting_steps
        if t.status != RunStatus.WAITING_FOR_INPUT:
            t.emit("run.waiting_for_input", "agent:resolution", {"steps": outcome.waiting_steps})
        t.status = RunStatus.WAITING_FOR_INPUT
    elif outcome.status == "paused":
        gate = catalog.policies.for_tenant(t.run.tenant_id).gate.model_copy(update={"name": STEP_FAILED_GATE})
        pause(t, gate, [outcome.error or "a step failed"], "agent:resolution", step_id=outcome.failed_step)
    else:
        fail(t, outcome.error or "resolution failed", "agent:resolution")


def feedback_stage(t: Transition, catalog: Catalog) -> None:
    record_feedback(t, "completed")
    t.status = RunStatus.COMPLETED
    t.emit("run.completed", "agent:feedback", {"duration_seconds": t.state["feedback"]["duration_seconds"]})


STAGES: dict[str, Stage] = {
    RunStatus.RECEIVED: triage_stage,
    RunStatus.TRIAGED: policy_stage,
    RunStatus.POLICY_EVALUATED: resolution_stage,
    RunStatus.RESUMED: resolution_stage,
    RunStatus.RESOLVING: resolution_stage,
    RunStatus.RESOLVED: feedback_stage,
}
