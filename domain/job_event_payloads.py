"""The payloads of the events jobs and schedules write: the SLA sweep (on the runs it changes and
on its own run), manual triggers, schedule fires, ingests and feedback digests. The topic registry
is ``domain.events``; the run's own and the playbook's payloads are in ``domain.event_payloads``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from domain.event_payloads import Payload, Severity

# --- the SLA sweep ----------------------------------------------------------------------------


class SweepMark(Payload):
    """On the swept run, and (with ``run_id``) on the sweep's own run."""

    sweep_run_id: str
    """The SLA sweep job's run that did this."""
    run_id: str | None = None
    """Only on the sweep's own run: the run it changed."""


class SlaAtRisk(SweepMark):
    """The run's SLA deadline is near: its severity was raised one level."""

    deadline: datetime
    minutes_remaining: float
    severity_from: Severity
    severity_to: Severity


class SlaBreached(SweepMark):
    """The run's SLA deadline has passed: its severity was raised to critical."""

    deadline: datetime
    minutes_overdue: float
    severity_from: Severity
    severity_to: Severity


class ApprovalExpired(SweepMark):
    """Nobody decided the gate in time; ``action`` is what the gate's expiry policy did."""

    gate: str
    expired_at: datetime
    action: Literal["reject", "approve", "reassign", "wait"]
    escalated: bool
    """Whether this was the escalation queue's deadline (the policy's ``then`` applied)."""
    reason: str | None = None
    """``reject`` and ``approve`` only: the decision's reason."""


class ApprovalEscalated(SweepMark):
    """The expired approval was handed to an escalation queue with a new deadline."""

    gate: str
    queue: str
    from_deciders: list[str]
    expires_at: datetime


class NotificationSent(Payload):
    channel: Literal["sla", "approval_escalation"]
    target: list[str]
    """Deciders (``role:``/``queue:``) or ``operations``."""
    sweep_run_id: str
    message: str


# --- workflows, schedules and jobs ------------------------------------------------------------


class WorkflowTriggered(Payload):
    """A workflow was started by hand (``POST /api/v1/workflows/{id}/trigger``)."""

    workflow_id: str
    trigger_type: Literal["manual"]
    run_id: str


class ScheduleFired(Payload):
    """A schedule started this run."""

    schedule_id: str
    scheduled_for: datetime
    coalesced: int
    """Earlier due times folded into this fire."""
    backfill: bool
    by_hand: bool
    """Fired by ``run-now`` rather than by the timer."""


class WorkflowCompleted(Payload):
    """A job's summary, which depends on its kind: open by design."""

    model_config = ConfigDict(extra="allow")

    actions_not_logged: int
    """Actions beyond the job's event limit, counted but not written as events."""


class IngestItemReceived(Payload):
    """On a run an ingest started: where its exception was read."""

    ingest_run_id: str
    source: str
    item_key: str
    """The source's own id for the item, or ``sha256:<hash>`` of it."""
    file: str | None
    """Relative to the source's path; ``None`` for an HTTP source."""
    line: int


class IngestItemStarted(Payload):
    item_key: str
    run_id: str


class IngestItemRejected(Payload):
    """An item the ingest could not take; the job goes on."""

    file: str | None
    line: int
    error_field: str | None
    message: str


class DurationStats(Payload):
    p50: float
    p95: float
    avg: float


class FailureReason(Payload):
    reason: str
    count: int


class DigestGroup(Payload):
    """The runs of one playbook or one workflow that ended in the window."""

    runs: int
    outcomes: dict[str, int]
    statuses: dict[str, int]
    duration_seconds: DurationStats | None
    hitl_rate: float
    steps_completed_ratio: float | None
    top_failure_reasons: list[FailureReason]
    triage_confidence_by_outcome: dict[str, float]


class FeedbackDigest(Payload):
    """Feedback's records of the runs that ended in a window, per playbook id and per workflow."""

    window_start: datetime
    window_end: datetime
    window_hours: float
    runs: int
    by_playbook: dict[str, DigestGroup]
    """Keyed by playbook id; ``(none)`` for runs that ended before one was assigned."""
    by_workflow: dict[str, DigestGroup]
