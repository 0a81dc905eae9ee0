"""What comes next for a run, as seed 003's "run next step" contract reports it: the next
playbook step, and whether the loop is active, paused (waiting on a person, a model or an
approval), completed or failed."""

from __future__ import annotations

from typing import Any

from config.catalog import Catalog
from domain.run_state import STEP_DONE, StepStatus
from domain.statuses import ACTIVE, STAGE_OF, RunStatus
from store.records import RunRecord

_LOOP_STATUS = {
    RunStatus.COMPLETED: "completed",
    RunStatus.REJECTED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "failed",
    RunStatus.PAUSED: "paused",
    RunStatus.WAITING_FOR_INPUT: "paused",
}


def loop_status(run: RunRecord) -> str:
    return _LOOP_STATUS.get(RunStatus(run.status), "active")


def next_playbook_step(run: RunRecord, catalog: Catalog) -> dict[str, Any] | None:
    """The first step of the run's playbook that is not done, or ``None``."""
    playbook = catalog.playbook(run.state.playbook_key or "")
    if playbook is None or RunStatus(run.status) not in ACTIVE | {RunStatus.PAUSED, RunStatus.WAITING_FOR_INPUT}:
        return None
    for number, step in enumerate(playbook.steps, start=1):
        status = run.state.step_status(step.id)
        if status not in STEP_DONE:
            found: dict[str, Any] = {
                "stepNumber": number, "stepType": step.action, "stepId": step.id, "stepName": step.name,
                "status": str(status),
            }
            if step.assignee is not None:
                found["assignee"] = step.assignee
            if step.estimated_minutes is not None:
                found["estimatedDurationMs"] = int(step.estimated_minutes * 60_000)
            return found
    return None


def why_nothing_ran(run: RunRecord, upcoming: dict[str, Any] | None) -> str:
    status = RunStatus(run.status)
    if status == RunStatus.PAUSED and run.state.pause is not None:
        pause = run.state.pause
        return f"run is paused at gate {pause.gate}: {pause.reason}; resume it to go on"
    if status == RunStatus.WAITING_FOR_INPUT and upcoming is not None:
        who = upcoming.get("assignee") or "a person or a model"
        return f"step {upcoming['stepId']} waits for a completion by {who}"
    if status in ACTIVE:
        return f"the {STAGE_OF[status]} stage would run next"
    return f"run has ended: {run.status}"


def newly_done_step(before: RunRecord, after: RunRecord, catalog: Catalog) -> dict[str, Any] | None:
    """The first playbook step whose status changed between two versions of a run."""
    playbook = catalog.playbook(after.state.playbook_key or "")
    if playbook is None:
        return None
    for number, step in enumerate(playbook.steps, start=1):
        status = after.state.step_status(step.id)
        if status in (StepStatus.COMPLETED, StepStatus.FAILED) and before.state.step_status(step.id) != status:
            return {"stepNumber": number, "stepType": step.action, "stepId": step.id, "status": str(status)}
    return None
