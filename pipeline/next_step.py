"""What comes next for a run, as seed 003's "run next step" contract reports it: the next
playbook step, and whether the loop is active, paused (waiting on a person, a model or an
approval), completed or failed."""

from __future__ import annotations

from typing import Any

from agents.resolution import DONE
from config.catalog import Catalog
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
    key = run.state.get("policy", {}).get("playbook")
    playbook = catalog.playbook(key) if key else None
    if playbook is None or RunStatus(run.status) not in ACTIVE | {RunStatus.PAUSED, RunStatus.WAITING_FOR_INPUT}:
        return None
    progress = run.state.get("steps", {})
    for number, step in enumerate(playbook.steps, start=1):
        record = progress.get(step.id, {})
        if record.get("status", "pending") not in DONE:
            found: dict[str, Any] = {
                "stepNumber": number, "stepType": step.action, "stepId": step.id, "stepName": step.name,
                "status": record.get("status", "pending"), "assignee": step.assignee,
            }
            if step.estimated_minutes is not None:
                found["estimatedDurationMs"] = int(step.estimated_minutes * 60_000)
            return found
    return None


def why_nothing_ran(run: RunRecord, upcoming: dict[str, Any] | None) -> str:
    status = RunStatus(run.status)
    if status == RunStatus.PAUSED:
        pause = run.state.get("pause", {})
        return f"run is paused at gate {pause.get('gate')}: {pause.get('reason')}; resume it to go on"
    if status == RunStatus.WAITING_FOR_INPUT and upcoming is not None:
        who = upcoming.get("assignee") or "a person or a model"
        return f"step {upcoming['stepId']} waits for a completion by {who}"
    if status in ACTIVE:
        return f"the {STAGE_OF[status]} stage would run next"
    return f"run has ended: {run.status}"


def newly_done_step(before: RunRecord, after: RunRecord, catalog: Catalog) -> dict[str, Any] | None:
    """The first playbook step whose status changed between two versions of a run."""
    key = after.state.get("policy", {}).get("playbook")
    playbook = catalog.playbook(key) if key else None
    if playbook is None:
        return None
    old, new = before.state.get("steps", {}), after.state.get("steps", {})
    for number, step in enumerate(playbook.steps, start=1):
        status = new.get(step.id, {}).get("status")
        if status in ("completed", "failed") and old.get(step.id, {}).get("status") != status:
            return {"stepNumber": number, "stepType": step.action, "stepId": step.id, "status": status}
    return None
