"""Resolution: walk the assigned playbook's steps. A step is ready once the steps it depends on
are done (by default, the step before it). Ready automatic actions execute at once; a step that
needs a person (``human``), a model (``ai``) or an outside tool waits for a completion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agents.actions import EXECUTORS
from agents.placeholders import resolve
from config.playbooks import Playbook, Step

ACTOR = "agent:resolution"
DONE = frozenset({"completed", "skipped"})
WAITING = frozenset({"waiting_for_input", "waiting_for_signal"})


@dataclass
class ResolutionOutcome:
    status: str  # resolved | waiting_for_input | calling | failed | paused
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_changes: dict[str, Any] = field(default_factory=dict)
    waiting_steps: list[str] = field(default_factory=list)
    calling_steps: list[str] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None


def playbook_fields(playbook: Playbook) -> dict[str, Any]:
    return {"playbook_id": playbook.id, "playbook_name": playbook.name, "playbook_version": playbook.version}


def prerequisites(playbook: Playbook, index: int) -> list[str]:
    """What a step waits for: its ``depends_on``, or else the step before it."""
    step = playbook.steps[index]
    if step.depends_on:
        return list(step.depends_on)
    return [playbook.steps[index - 1].id] if index else []


def is_ready(playbook: Playbook, index: int, progress: dict[str, dict[str, Any]]) -> bool:
    return all(progress.get(dep, {}).get("status") in DONE for dep in prerequisites(playbook, index))


def _waiting_status(step: Step) -> str:
    return "waiting_for_input" if step.type == "human" else "waiting_for_signal"


def walk_playbook(
    playbook: Playbook, scope: dict[str, Any], progress: dict[str, dict[str, Any]], now: datetime
) -> ResolutionOutcome:
    """Advance ``progress`` (step id -> record) as far as the ready automatic steps allow."""
    outcome = ResolutionOutcome(status="resolved", progress={k: dict(v) for k, v in progress.items()})
    steps = outcome.progress
    if not progress:
        started = {**playbook_fields(playbook), "total_steps": len(playbook.steps)}
        outcome.events.append(("playbook.started", started))
    outputs = {sid: {"outputs": rec.get("outputs", {})} for sid, rec in steps.items()}
    outcome.failed_step = next((s.id for s in playbook.steps if steps.get(s.id, {}).get("status") == "failed"), None)
    if outcome.failed_step is not None:
        outcome.error = f"step {outcome.failed_step}: {steps[outcome.failed_step].get('error', 'failed')}"
    advanced = True
    while advanced and outcome.failed_step is None:
        advanced = False
        for order, step in enumerate(playbook.steps, start=1):
            if steps.get(step.id, {}).get("status", "pending") != "pending" or not is_ready(playbook, order - 1, steps):
                continue
            advanced = True
            if step.action == "call_tool":
                unresolved: list[str] = []
                payload = resolve(step.params.get("input", {}), {**scope, "steps": outputs}, unresolved)
                steps[step.id] = {
                    "status": "in_progress", "order": order, "since": now.isoformat(),
                    "tool": step.params["tool"], "input": payload,
                }
                outcome.events.append(("playbook.step_started", {
                    **playbook_fields(playbook), "step_id": step.id, "step_name": step.name, "step_order": order,
                    "action_type": step.action, "tool": step.params["tool"], "input": payload,
                }))
                continue
            if step.action not in EXECUTORS:
                steps[step.id] = {"status": _waiting_status(step), "order": order, "since": now.isoformat()}
                outcome.events.append(("playbook.step_waiting", {
                    **playbook_fields(playbook), "step_id": step.id, "step_name": step.name, "step_order": order,
                    "step_type": step.type, "action_type": step.action, "assignee": step.assignee,
                    "output_contract": {k: v.model_dump(exclude_defaults=True) for k, v in step.outputs.items()},
                }))
                continue
            unresolved: list[str] = []
            params = resolve(step.params, {**scope, "steps": outputs}, unresolved)
            try:
                result = EXECUTORS[step.action](params)
            except ValueError as exc:
                steps[step.id] = {"status": "failed", "order": order, "error": str(exc), "at": now.isoformat()}
                outcome.failed_step, outcome.error = step.id, f"step {step.id}: {exc}"
                outcome.events.append(("playbook.step_failed", {
                    **playbook_fields(playbook), "step_id": step.id, "step_order": order, "error": str(exc),
                    "on_failure": step.on_failure,
                }))
                break
            notes = result.notes + (f" (no value for {', '.join(unresolved)})" if unresolved else "")
            steps[step.id] = {
                "status": "completed", "order": order, "outputs": result.outputs,
                "completed_at": now.isoformat(), "completed_by": ACTOR,
            }
            outputs[step.id] = {"outputs": result.outputs}
            outcome.run_changes.update(result.run_changes)
            outcome.events.append(("playbook.step_completed", {
                **playbook_fields(playbook), "step_order": order, "step_id": step.id,
                "step_name": step.name, "action_type": step.action, "actor_type": "agent",
                "actor_id": ACTOR, "notes": notes, "outputs": result.outputs,
            }))
    if outcome.failed_step is not None:
        failed = playbook.step(outcome.failed_step)
        outcome.status = "paused" if failed is not None and failed.on_failure == "pause" else "failed"
        return outcome
    outcome.waiting_steps = [s.id for s in playbook.steps if steps.get(s.id, {}).get("status") in WAITING]
    outcome.calling_steps = [s.id for s in playbook.steps if steps.get(s.id, {}).get("status") == "in_progress"]
    if outcome.calling_steps:
        outcome.status = "calling"
    elif all(steps.get(s.id, {}).get("status") in DONE for s in playbook.steps):
        outcome.events.append(("playbook.completed", {
            **playbook_fields(playbook), "total_steps": len(playbook.steps),
            "completed_by": steps[playbook.steps[-1].id].get("completed_by", ACTOR),
            "completed_at": now.isoformat(),
        }))
    else:
        outcome.status = "waiting_for_input"
    return outcome
