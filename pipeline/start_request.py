"""What starting a run takes, as one frozen value, and the one place a new run's record is built
(a pipeline run and a job's run alike)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.run_state import RunState
from domain.topics import Topic
from pipeline.transition import Transition
from store.records import IdempotentResponse, RunRecord


@dataclass(frozen=True, slots=True)
class IdempotencySpec:
    """A request's ``Idempotency-Key`` and how to render its answer from the committed run: the
    answer is stored in the same write as the effect, so a retry gets it and starts nothing."""

    tenant_id: str
    key: str
    fingerprint: str
    status_code: int
    render: Callable[[RunRecord], str]
    """The answer's body (JSON text) for the run as the write leaves it."""

    def response_for(self, run: RunRecord, now: datetime) -> IdempotentResponse:
        return IdempotentResponse(self.tenant_id, self.key, self.fingerprint, self.status_code, self.render(run), now)


@dataclass(frozen=True, slots=True)
class StartRequest:
    """Start a run of ``workflow_id`` with ``payload`` (an exception for the pipeline, parameters
    for a job), on behalf of ``actor``."""

    tenant_id: str
    workflow_id: str
    payload: dict[str, Any]
    actor: str
    trigger_type: str
    trigger_ref: str | None = None
    run_id: str | None = None
    """Chosen by the caller when it must name the run before it exists (an event that refers to it)."""
    request_id: str | None = None
    extra_events: tuple[tuple[Topic, dict[str, Any]], ...] = ()
    """Recorded right after ``run.received``, by the same actor (e.g. ``schedule.fired``)."""
    idempotency: IdempotencySpec | None = None
    ingested: tuple[str, str] | None = None
    """The (source, item key) an ingest read it from: committed with the run, so an item starts one run."""
    playbook: str | None = None
    """A playbook the caller asks for (``id`` or ``id@version``) instead of the best match."""


def open_run(
    request: StartRequest, run_id: str, now: datetime, *, status: str, state: RunState,
    received: dict[str, Any], sla_deadline: datetime | None = None,
) -> Transition:
    """A new run's first transition: its record (version 1) with ``run.received`` carrying
    ``received`` and the request's extra events."""
    run = RunRecord(
        id=run_id, tenant_id=request.tenant_id, workflow_id=request.workflow_id, status=status,
        trigger_type=request.trigger_type, trigger_ref=request.trigger_ref, started_by=request.actor, version=1,
        last_seq=0, exception=request.payload, state=state, sla_deadline=sla_deadline, pause_expires_at=None,
        created_at=now, updated_at=now,
    )
    t = Transition(run, now, request.request_id)
    t.emit(Topic.RUN_RECEIVED, request.actor, {"trigger_type": request.trigger_type, **received})
    for topic, payload in request.extra_events:
        t.emit(topic, request.actor, payload)
    return t
