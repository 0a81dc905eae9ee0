"""Completing a step that waits for a person or a model: state checks, the output contract,
and the record the Resolution stage then continues from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.resolution import playbook_fields
from config.output_contract import contract_problems
from config.playbooks import Playbook
from domain.errors import (
    Forbidden,
    RunNotWaiting,
    StepAlreadyTerminal,
    StepNotCompletable,
    StepNotFound,
    ValidationFailed,
)
from domain.run_state import STEP_COMPLETABLE, STEP_TERMINAL, StepRecord, StepStatus, with_step
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.transition import Transition


@dataclass(frozen=True)
class StepCompletion:
    outputs: dict[str, Any]
    ai_confidence: float | None
    ai_insights: str | None
    actor: str
    queues: frozenset[str] = frozenset()
    may_override: bool = False
    """Whether the caller may complete a step assigned to someone else (``steps:override``)."""

    def assigned_to_caller(self, assignee: str | None) -> bool:
        if assignee is None or assignee == self.actor:
            return True
        return assignee.startswith("queue:") and assignee.removeprefix("queue:") in self.queues


def complete_step(t: Transition, playbook: Playbook, step_id: str, completion: StepCompletion) -> None:
    """Mark ``step_id`` completed on ``t`` and hand the run back to Resolution.

    Raises ``StepNotFound`` (not in this run's playbook), ``StepAlreadyTerminal``, ``RunNotWaiting``
    (the run is paused or has ended), ``StepNotCompletable`` (the step is not waiting for a
    completion) or ``ValidationFailed`` (outputs that break the step's contract); none of them
    changes anything."""
    step = playbook.step(step_id)
    if step is None:
        raise StepNotFound(f"Step {step_id} not found in run {t.run.id}")
    record = t.state.steps.get(step_id)
    status = record.status if record is not None else StepStatus.PENDING
    if status in STEP_TERMINAL:
        raise StepAlreadyTerminal(f"Step is already in terminal state: {status}", {"status": status})
    if t.status != RunStatus.WAITING_FOR_INPUT:
        raise RunNotWaiting(
            f"Run {t.run.id} is {t.status}; steps can be completed only while it waits for input",
            {"run_status": t.status},
        )
    if status not in STEP_COMPLETABLE:
        completable = [str(s) for s in STEP_COMPLETABLE]
        raise StepNotCompletable(
            f"Step cannot be completed from status: {status}. Must be one of: {', '.join(completable)}",
            {"status": status, "completable": completable},
        )
    override = not completion.assigned_to_caller(step.assignee)
    if override and not completion.may_override:
        raise Forbidden(
            f"Step {step_id} is assigned to {step.assignee}; completing it for them needs the "
            "'steps:override' permission",
            {"permission": "steps:override", "assignee": step.assignee},
        )
    problems = contract_problems(step.outputs, completion.outputs)
    if problems:
        raise ValidationFailed(f"Output validation failed: {problems[0]['message']}", problems)
    assert record is not None  # a completable step has a record
    since = record.since or t.now
    minutes = round((t.now - since).total_seconds() / 60, 2)
    if step.type == "human":
        t.state.human_interventions += 1
    t.emit(Topic.PLAYBOOK_STEP_COMPLETED, completion.actor, {
        **playbook_fields(playbook), "step_order": record.order, "step_id": step_id, "step_name": step.name,
        "action_type": step.action, "actor_type": completion.actor.split(":", 1)[0],
        "actor_id": completion.actor, "notes": completion.ai_insights or f"completed by {completion.actor}",
        "outputs": completion.outputs, "ai_confidence": completion.ai_confidence,
        "actual_duration_minutes": minutes, "assignee": step.assignee, "override": override,
    })
    completed_seq = t.seq
    if override:
        t.emit(Topic.PLAYBOOK_STEP_OVERRIDDEN, completion.actor, {
            **playbook_fields(playbook), "step_id": step_id, "assignee": step.assignee,
            "why": f"{completion.actor} completed a step assigned to {step.assignee} (steps:override)",
        })
    t.state.steps = with_step(t.state, step_id, StepRecord(
        status=StepStatus.COMPLETED, order=record.order, since=record.since, outputs=completion.outputs,
        completed_at=t.now, completed_by=completion.actor, duration_minutes=minutes,
        ai_confidence=completion.ai_confidence, ai_insights=completion.ai_insights, event_seq=completed_seq,
    ))
    t.state.waiting_steps = [s for s in t.state.waiting_steps if s != step_id]
    t.status = RunStatus.RESOLVING


def steps_ready_after(playbook: Playbook, progress: dict[str, StepRecord]) -> list[dict[str, Any]]:
    """The steps now waiting to be activated by a person or a model, in order."""
    return [
        {"step_id": s.id, "step_sequence": i, "step_name": s.name, "step_type": s.type,
         "status": "ready_to_activate"}
        for i, s in enumerate(playbook.steps, start=1)
        if (record := progress.get(s.id)) is not None and record.status in STEP_COMPLETABLE
    ]
