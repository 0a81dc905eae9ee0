"""Projections of stored runs into the API's response models."""

from __future__ import annotations

from typing import Any

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
from domain.run_state import STEP_DONE, StepStatus
from domain.state_codec import as_payload
from domain.statuses import STAGE_OF, RunStatus
from store.records import EventRecord, RunRecord
from store.run_summaries import PendingRow, RunSummaryRow


def stage_of(status: str) -> str:
    return STAGE_OF.get(RunStatus(status), "done")


def run_summary(run: RunRecord) -> RunSummary:
    """A run's summary from its whole state: what ``listed_run`` must equal, row for row
    (``tests/store/test_run_summaries.py``)."""
    return RunSummary(**_summary_fields(run))


def listed_run(row: RunSummaryRow) -> RunSummary:
    """A row of the runs list, read without the run's whole state (``store/run_summaries.py``)."""
    return RunSummary(
        id=row.id, workflow_id=row.workflow_id, status=row.status, stage=stage_of(row.status),
        trigger_type=row.trigger_type, domain=row.domain, type=row.type, amount=row.amount,
        currency=row.currency, severity=row.severity, playbook_id=row.playbook_id,
        playbook_version=row.playbook_version, created_at=row.created_at, updated_at=row.updated_at,
    )


def _summary_fields(run: RunRecord) -> dict[str, Any]:
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
        "severity": run.state.current_severity,
        **_playbook_identity(run),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
    }


def _playbook_identity(run: RunRecord) -> dict[str, Any]:
    policy = run.state.policy
    return {"playbook_id": policy.playbook_id if policy else None,
            "playbook_version": policy.playbook_version if policy else None}


def playbook_progress(run: RunRecord, catalog: Catalog) -> PlaybookProgress | None:
    playbook = catalog.playbook(run.state.playbook_key or "")
    if playbook is None:
        return None
    steps = []
    for sequence, step in enumerate(playbook.steps, start=1):
        record = run.state.step(step.id)
        instructions = step.params.get("instructions")
        steps.append(StepProgress(
            id=step.id, sequence=sequence, name=step.name, action=step.action, type=step.type,
            assignee=step.assignee, depends_on=step.depends_on,
            status=record.status if record else StepStatus.PENDING,
            output_contract={k: v.model_dump(exclude_defaults=True) for k, v in step.outputs.items()},
            instructions=instructions if isinstance(instructions, str) else None,
            outputs=record.outputs if record else None, waiting_since=record.since if record else None,
            completed_at=record.completed_at if record else None,
            completed_by=record.completed_by if record else None,
        ))
    done = sum(1 for s in steps if s.status in STEP_DONE)
    current = next((s.id for s in steps if s.status not in STEP_DONE), None)
    return PlaybookProgress(
        playbook_id=playbook.id, playbook_version=playbook.version, name=playbook.name, mode=playbook.mode,
        total_steps=len(steps), completed_steps=sum(1 for s in steps if s.status == StepStatus.COMPLETED),
        progress_percent=round(100 * done / len(steps), 1), current_step=current, steps=steps,
    )


def playbook_status(run: RunRecord, catalog: Catalog) -> PlaybookStatus:
    progress = playbook_progress(run, catalog)
    if run.state.playbook_key is None:
        state = "no_playbook"
    elif progress is None:
        state = "playbook_missing"
    else:
        state = "completed" if progress.current_step is None else "in_progress"
    return PlaybookStatus(run_id=run.id, state=state, **_playbook_identity(run), playbook=progress)


def _paused_step(run: RunRecord) -> str | None:
    pause = run.state.pause
    if run.status == RunStatus.PAUSED and pause is not None:
        return pause.step_id or pause.gate
    if run.status == RunStatus.WAITING_FOR_INPUT:
        return next(iter(run.state.waiting_steps), None)
    return None


def _part(part: Any) -> dict[str, Any] | None:
    return as_payload(part) if part is not None else None


def run_detail(run: RunRecord, catalog: Catalog) -> RunDetail:
    state = run.state
    return RunDetail(
        **_summary_fields(run),
        started_by=run.started_by,
        trigger_ref=run.trigger_ref,
        exception=run.exception,
        triage=_part(state.triage),
        policy=_part(state.policy),
        pause=PauseInfo.model_validate(as_payload(state.pause)) if state.pause else None,
        paused_step=_paused_step(run),
        playbook_progress=playbook_progress(run, catalog),
        feedback=_part(state.feedback),
        decisions=[as_payload(d) for d in state.decisions],
        error=state.error,
        last_seq=run.last_seq,
    )


def pending_item(run: RunRecord) -> PendingRunItem:
    """An inbox item from the run's whole state: what ``pending_listed`` must equal."""
    pause = run.state.pause
    assert pause is not None, "only paused runs are pending"
    return PendingRunItem(
        run_id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        trigger_type=run.trigger_type,
        started_at=run.created_at,
        paused_step=pause.step_id or pause.gate,
        gate=pause.gate,
        reason=pause.reason,
        requested_at=pause.requested_at,
        expires_at=pause.expires_at,
        payload_schema=pause.payload_schema,
        exception=run.exception,
        severity=run.state.current_severity,
        **_playbook_identity(run),
    )


def pending_listed(row: PendingRow) -> PendingRunItem:
    """An inbox item read without the run's whole state (``store/run_summaries.py``)."""
    pause, summary = row.pause, row.summary
    return PendingRunItem(
        run_id=summary.id, workflow_id=summary.workflow_id, status=summary.status,
        trigger_type=summary.trigger_type, started_at=summary.created_at,
        paused_step=pause.get("step_id") or pause["gate"], gate=pause["gate"], reason=pause["reason"],
        requested_at=pause["requested_at"], expires_at=pause["expires_at"],
        payload_schema=pause["payload_schema"], exception=row.exception, severity=summary.severity,
        playbook_id=summary.playbook_id, playbook_version=summary.playbook_version,
    )


def event_out(event: EventRecord) -> EventOut:
    return EventOut(
        id=event.id, run_id=event.run_id, seq=event.seq, topic=event.topic, actor=event.actor,
        request_id=event.request_id, created_at=event.created_at, payload=event.payload,
    )
