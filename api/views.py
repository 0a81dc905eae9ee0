"""Projections of stored runs into the API's response models."""

from __future__ import annotations

from agents.resolution import DONE
from api.schemas import (
    EventOut,
    PauseInfo,
    PendingRunItem,
    PlaybookProgress,
    PlaybookStatus,
    RunDetail,
    RunSummary,
    StepProgress,
)
from config.catalog import Catalog
from domain.statuses import STAGE_OF, RunStatus
from store.records import EventRecord, RunRecord


def stage_of(status: str) -> str:
    return STAGE_OF.get(RunStatus(status), "done")


def current_severity(run: RunRecord) -> str | None:
    """The SLA sweep's raised severity when it raised one, else triage's."""
    return run.state.get("severity") or run.state.get("triage", {}).get("severity")


def run_summary(run: RunRecord) -> RunSummary:
    return RunSummary(**_summary_fields(run))


def _summary_fields(run: RunRecord) -> dict:
    exception = run.exception
    return {
        "id": run.id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "stage": stage_of(run.status),
        "trigger_type": run.trigger_type,
        "domain": exception.get("domain"),
        "type": exception.get("type"),
        "amount": exception.get("amount"),
        "currency": exception.get("currency"),
        "severity": current_severity(run),
        "playbook": run.state.get("policy", {}).get("playbook"),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def playbook_progress(run: RunRecord, catalog: Catalog) -> PlaybookProgress | None:
    key = run.state.get("policy", {}).get("playbook")
    playbook = catalog.playbook(key) if key else None
    if playbook is None:
        return None
    progress = run.state.get("steps", {})
    steps = []
    for sequence, step in enumerate(playbook.steps, start=1):
        record = progress.get(step.id, {})
        steps.append(StepProgress(
            id=step.id, sequence=sequence, name=step.name, action=step.action, type=step.type,
            assignee=step.assignee, depends_on=step.depends_on, status=record.get("status", "pending"),
            output_contract={k: v.model_dump(exclude_defaults=True) for k, v in step.outputs.items()},
            instructions=step.params.get("instructions") if isinstance(step.params.get("instructions"), str) else None,
            outputs=record.get("outputs"), waiting_since=record.get("since"),
            completed_at=record.get("completed_at"), completed_by=record.get("completed_by"),
        ))
    done = sum(1 for s in steps if s.status in DONE)
    current = next((s.id for s in steps if s.status not in DONE), None)
    return PlaybookProgress(
        playbook=key, name=playbook.name, version=playbook.version, steps_total=len(steps),
        steps_completed=sum(1 for s in steps if s.status == "completed"),
        progress_percent=round(100 * done / len(steps), 1), current_step=current, steps=steps,
    )


def playbook_status(run: RunRecord, catalog: Catalog) -> PlaybookStatus:
    key = run.state.get("policy", {}).get("playbook")
    progress = playbook_progress(run, catalog)
    if key is None:
        state = "no_playbook"
    elif progress is None:
        state = "playbook_missing"
    else:
        state = "completed" if progress.current_step is None else "in_progress"
    return PlaybookStatus(run_id=run.id, state=state, assigned=key, playbook=progress)


def _paused_step(run: RunRecord) -> str | None:
    if run.status == RunStatus.PAUSED:
        return run.state["pause"].get("step_id") or run.state["pause"]["gate"]
    if run.status == RunStatus.WAITING_FOR_INPUT:
        return next(iter(run.state.get("waiting_steps", [])), None)
    return None


def run_detail(run: RunRecord, catalog: Catalog) -> RunDetail:
    pause = run.state.get("pause")
    return RunDetail(
        **_summary_fields(run),
        started_by=run.started_by,
        trigger_ref=run.trigger_ref,
        exception=run.exception,
        triage=run.state.get("triage"),
        policy=run.state.get("policy"),
        pause=PauseInfo(**pause) if pause else None,
        paused_step=_paused_step(run),
        playbook_progress=playbook_progress(run, catalog),
        feedback=run.state.get("feedback"),
        decisions=run.state.get("decisions", []),
        error=run.state.get("error"),
        last_seq=run.last_seq,
    )


def pending_item(run: RunRecord) -> PendingRunItem:
    pause = run.state["pause"]
    return PendingRunItem(
        run_id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        trigger_type=run.trigger_type,
        started_at=run.created_at,
        paused_step=pause.get("step_id") or pause["gate"],
        gate=pause["gate"],
        reason=pause["reason"],
        requested_at=pause["requested_at"],
        expires_at=pause["expires_at"],
        payload_schema=pause["payload_schema"],
        exception=run.exception,
        severity=current_severity(run),
        playbook=run.state.get("policy", {}).get("playbook"),
    )


def event_out(event: EventRecord) -> EventOut:
    return EventOut(
        id=event.id, run_id=event.run_id, seq=event.seq, topic=event.topic, actor=event.actor,
        request_id=event.request_id, created_at=event.created_at, payload=event.payload,
    )
