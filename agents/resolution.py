"""Resolution: walk the assigned playbook's steps in order. Automatic actions execute at once;
a step that needs a person, a model or an outside tool stops the walk until it is completed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.actions import EXECUTORS
from agents.placeholders import resolve
from config.playbooks import Playbook

ACTOR = "agent:resolution"


@dataclass
class ResolutionOutcome:
    status: str  # resolved | waiting_for_input | failed
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_changes: dict[str, Any] = field(default_factory=dict)
    waiting_step: str | None = None
    error: str | None = None


def _playbook_fields(playbook: Playbook) -> dict[str, Any]:
    return {"playbook_id": playbook.id, "playbook_name": playbook.name, "playbook_version": playbook.version}


def walk_playbook(
    playbook: Playbook, scope: dict[str, Any], progress: dict[str, dict[str, Any]], now: datetime
) -> ResolutionOutcome:
    """Advance ``progress`` (step id -> record) as far as automatic steps allow."""
    outcome = ResolutionOutcome(status="resolved", progress={k: dict(v) for k, v in progress.items()})
    if not progress:
        started = {**_playbook_fields(playbook), "total_steps": len(playbook.steps)}
        outcome.events.append(("playbook.started", started))
    step_outputs = {sid: {"outputs": rec.get("outputs", {})} for sid, rec in outcome.progress.items()}
    for order, step in enumerate(playbook.steps, start=1):
        record = outcome.progress.get(step.id, {})
        if record.get("status") in ("completed", "skipped"):
            continue
        if step.action not in EXECUTORS:
            outcome.progress[step.id] = {
                "status": "waiting_for_input", "order": order, "since": now.isoformat(),
            }
            outcome.status, outcome.waiting_step = "waiting_for_input", step.id
            outcome.events.append(("run.waiting_for_input", {
                **_playbook_fields(playbook), "step_id": step.id, "step_name": step.name,
                "step_order": order, "action_type": step.action, "assignee": step.assignee,
            }))
            return outcome
        unresolved: list[str] = []
        params = resolve(step.params, {**scope, "steps": step_outputs}, unresolved)
        try:
            result = EXECUTORS[step.action](params)
        except ValueError as exc:
            outcome.progress[step.id] = {"status": "failed", "order": order, "error": str(exc)}
            outcome.status, outcome.error = "failed", f"step {step.id}: {exc}"
            outcome.events.append(("playbook.step_failed", {
                **_playbook_fields(playbook), "step_id": step.id, "step_order": order, "error": str(exc),
            }))
            return outcome
        notes = result.notes + (f" (no value for {', '.join(unresolved)})" if unresolved else "")
        outcome.progress[step.id] = {
            "status": "completed", "order": order, "outputs": result.outputs,
            "completed_at": now.isoformat(), "completed_by": ACTOR,
        }
        step_outputs[step.id] = {"outputs": result.outputs}
        outcome.run_changes.update(result.run_changes)
        outcome.events.append(("playbook.step_completed", {
            **_playbook_fields(playbook), "step_order": order, "step_id": step.id,
            "step_name": step.name, "action_type": step.action, "actor_type": "agent",
            "actor_id": ACTOR, "notes": notes, "outputs": result.outputs,
        }))
    outcome.events.append(("playbook.completed", {
        **_playbook_fields(playbook), "total_steps": len(playbook.steps),
        "completed_by": ACTOR, "completed_at": now.isoformat(),
    }))
    return outcome
