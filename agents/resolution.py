"""Resolution: walk the assigned playbook's steps. A step is ready once the steps it depends on
are done (by default, the step before it). Ready automatic actions execute at once; a step that
needs a person (``human``), a model (``ai``) or an outside tool waits for a completion. A
playbook run ``mode: stepwise`` takes only as many steps as it is granted (run-next-step
grants one at a time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.actions import EXECUTORS, Notification
from agents.placeholders import resolve
from config.playbooks import Playbook, Step
from domain.ids import derived_id
from domain.run_state import STEP_DONE, STEP_WAITING, StepRecord, StepStatus
from domain.topics import Topic

ACTOR = "agent:resolution"
TAKEABLE = frozenset({StepStatus.PENDING, StepStatus.READY})
"""A ready step of a stepwise run waits for its grant; otherwise steps start pending."""


@dataclass
class ResolutionOutcome:
    status: str  # resolved | waiting_for_input | calling | awaiting_next_step | failed | paused
    events: list[tuple[Topic, dict[str, Any]]] = field(default_factory=list)
    progress: dict[str, StepRecord] = field(default_factory=dict)
    run_changes: dict[str, Any] = field(default_factory=dict)
    notifications: list[tuple[str, str, Notification]] = field(default_factory=list)
    """(delivery id, step id, message) for each notify step taken: the deliveries to write."""
    waiting_steps: list[str] = field(default_factory=list)
    calling_steps: list[str] = field(default_factory=list)
    next_step: str | None = None
    failed_step: str | None = None
    error: str | None = None


def playbook_fields(playbook: Playbook) -> dict[str, Any]:
    """How every lifecycle event names its playbook: the id, its name, and the version apart."""
    return {"playbook_id": playbook.id, "playbook_name": playbook.name, "playbook_version": playbook.version}


def prerequisites(playbook: Playbook, index: int) -> list[str]:
    """What a step waits for: its ``depends_on``, or else the step before it."""
    step = playbook.steps[index]
    if step.depends_on:
        return list(step.depends_on)
    return [playbook.steps[index - 1].id] if index else []


def _waiting_status(step: Step) -> StepStatus:
    return StepStatus.WAITING_FOR_INPUT if step.type == "human" else StepStatus.WAITING_FOR_SIGNAL


def _contract(step: Step) -> dict[str, Any]:
    return {k: v.model_dump(exclude_defaults=True) for k, v in step.outputs.items()}


def walk_playbook(
    playbook: Playbook, scope: dict[str, Any], progress: dict[str, StepRecord], now: datetime,
    budget: int | None = None,
) -> ResolutionOutcome:
    """Advance ``progress`` (step id -> record) as far as the ready steps allow, taking at most
    ``budget`` steps (``None``: no limit)."""
    outcome = ResolutionOutcome(status="resolved", progress=dict(progress))
    steps = outcome.progress
    fields = playbook_fields(playbook)
    if not progress:
        outcome.events.append((Topic.PLAYBOOK_STARTED, {**fields, "total_steps": len(playbook.steps)}))
    outputs = {sid: {"outputs": rec.outputs or {}} for sid, rec in steps.items()}
    statuses = {sid: rec.status for sid, rec in steps.items()}
    """Kept beside ``steps`` as each record changes: the walk reads statuses far more than it writes."""
    waits_for = [prerequisites(playbook, index) for index in range(len(playbook.steps))]
    outcome.failed_step = next((s.id for s in playbook.steps if statuses.get(s.id) == StepStatus.FAILED), None)
    if outcome.failed_step is not None:
        outcome.error = f"step {outcome.failed_step}: {steps[outcome.failed_step].error or 'failed'}"
    advanced = True
    while advanced and outcome.failed_step is None and outcome.next_step is None:
        advanced = False
        for order, step in enumerate(playbook.steps, start=1):
            if statuses.get(step.id, StepStatus.PENDING) not in TAKEABLE or not all(
                    statuses.get(dep) in STEP_DONE for dep in waits_for[order - 1]):
                continue
            if budget is not None:
                if budget == 0:  # marked ready, so the run shows which step the next grant takes
                    outcome.next_step = step.id
                    if step.id not in statuses:
                        steps[step.id] = StepRecord(status=StepStatus.READY, order=order, since=now)
                        statuses[step.id] = StepStatus.READY
                    break
                budget -= 1
            advanced = True
            step_fields = {**fields, "step_id": step.id, "step_name": step.name, "step_order": order}
            if step.action == "call_tool":
                payload = resolve(step.params.get("input", {}), {**scope, "steps": outputs}, [])
                steps[step.id] = StepRecord(status=StepStatus.IN_PROGRESS, order=order, since=now,
                                            tool=step.params["tool"], input=payload)
                statuses[step.id] = StepStatus.IN_PROGRESS
                outcome.events.append((Topic.PLAYBOOK_STEP_STARTED, {
                    **step_fields, "action_type": step.action, "tool": step.params["tool"], "input": payload,
                }))
                continue
            if step.action not in EXECUTORS:
                steps[step.id] = StepRecord(status=_waiting_status(step), order=order, since=now)
                statuses[step.id] = steps[step.id].status
                outcome.events.append((Topic.PLAYBOOK_STEP_WAITING, {
                    **step_fields, "step_type": step.type, "action_type": step.action, "assignee": step.assignee,
                    "output_contract": _contract(step),
                }))
                continue
            unresolved: list[str] = []
            params = resolve(step.params, {**scope, "steps": outputs}, unresolved)
            try:
                result = EXECUTORS[step.action](params)
            except ValueError as exc:
                steps[step.id] = StepRecord(status=StepStatus.FAILED, order=order, error=str(exc), failed_at=now)
                statuses[step.id] = StepStatus.FAILED
                outcome.failed_step, outcome.error = step.id, f"step {step.id}: {exc}"
                outcome.events.append((Topic.PLAYBOOK_STEP_FAILED, {
                    **step_fields, "action_type": step.action, "error": str(exc), "on_failure": step.on_failure,
                }))
                break
            notes = result.notes + (f" (no value for {', '.join(unresolved)})" if unresolved else "")
            if result.notification is not None:
                delivery_id = derived_id("dlv", str(scope.get("run", {}).get("id", "")), step.id)
                result.outputs["delivery_id"] = delivery_id
                outcome.notifications.append((delivery_id, step.id, result.notification))
                notes = f"delivery {delivery_id} queued {notes}"
            steps[step.id] = StepRecord(status=StepStatus.COMPLETED, order=order, outputs=result.outputs,
                                        completed_at=now, completed_by=ACTOR)
            statuses[step.id] = StepStatus.COMPLETED
            outputs[step.id] = {"outputs": result.outputs}
            outcome.run_changes.update(result.run_changes)
            outcome.events.append((Topic.PLAYBOOK_STEP_COMPLETED, {
                **step_fields, "action_type": step.action, "actor_type": "agent", "actor_id": ACTOR,
                "notes": notes, "outputs": result.outputs,
            }))
    if outcome.failed_step is not None:
        failed = playbook.step(outcome.failed_step)
        outcome.status = "paused" if failed is not None and failed.on_failure == "pause" else "failed"
        return outcome
    outcome.waiting_steps = [s.id for s in playbook.steps if statuses.get(s.id) in STEP_WAITING]
    outcome.calling_steps = [s.id for s in playbook.steps if statuses.get(s.id) == StepStatus.IN_PROGRESS]
    if outcome.calling_steps:
        outcome.status = "calling"
    elif all(statuses.get(s.id) in STEP_DONE for s in playbook.steps):
        last = steps[playbook.steps[-1].id]
        outcome.events.append((Topic.PLAYBOOK_COMPLETED, {
            **fields, "total_steps": len(playbook.steps), "completed_by": last.completed_by or ACTOR,
            "completed_at": now.isoformat(),
        }))
    elif outcome.next_step is not None and not outcome.waiting_steps:
        outcome.status = "awaiting_next_step"
    else:
        outcome.status = "waiting_for_input"
    return outcome
