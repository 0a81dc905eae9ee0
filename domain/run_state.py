"""The run's state: one typed, versioned shape that every layer reads and writes.

What the agents decided (triage, policy), where the run waits (pause, pending calls, waiting
steps), how each playbook step went, who decided what, and how the run ended. The store keeps it
as JSON in ``runs.state`` and is the only place that serialises it (``domain.state_codec``);
a run written by an older ``schema_version`` is upgraded when read (``domain.upcasters``).

msgspec ``Struct``s rather than pydantic models: building a completed run's state and encoding
it took 9.1 µs with msgspec, 11.2 µs with the dicts it replaced and 39.8 µs with pydantic models,
and reading it back 10.4, 9.6 and 23.2 µs (``python -m bench.state_model``, 2026-11-29), and the
engine builds one per run on the hot path.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

CURRENT_SCHEMA_VERSION = 2
"""1: the untyped dict written before the state had a version; 2: this model."""


class StepStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_INPUT = "waiting_for_input"
    WAITING_FOR_SIGNAL = "waiting_for_signal"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


STEP_DONE = frozenset({StepStatus.COMPLETED, StepStatus.SKIPPED})
"""A step in one of these lets the steps that depend on it go ahead."""
STEP_WAITING = frozenset({StepStatus.WAITING_FOR_INPUT, StepStatus.WAITING_FOR_SIGNAL})
"""Waiting for a completion from a person (input) or a model (signal)."""
STEP_TERMINAL = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})
STEP_OPEN = frozenset(set(StepStatus) - STEP_TERMINAL)
STEP_COMPLETABLE = (StepStatus.IN_PROGRESS, StepStatus.WAITING_FOR_INPUT, StepStatus.WAITING_FOR_SIGNAL,
                    StepStatus.READY)
"""A completion over the API is accepted for a step in one of these."""


class Model(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Base of the state's parts: keyword-only, defaults left out of the JSON, unknown keys refused
    (an unknown key means a shape this code does not know, which an upcaster must handle)."""


class PlaybookCandidate(Model):
    playbook_id: str
    playbook_version: int
    reasoning: str


class TriageResult(Model):
    """Triage's classification and the playbooks that match (best first)."""

    source: str
    rule_id: str | None
    domain: str
    exception_type: str
    severity: str
    confidence: float
    sla_minutes_remaining: float | None
    tags: list[str]
    reasons: list[str]
    suggested_playbook_id: str | None
    suggested_playbook_version: int | None
    playbook_reasoning: str | None
    candidates: list[PlaybookCandidate]
    llm_error: str | None = None
    llm_confidence: float | None = None
    rules_confidence: float | None = None


class PolicyDecision(Model):
    """Policy's assignment and whether a human must approve first."""

    playbook_id: str | None
    playbook_version: int | None
    playbook_name: str | None
    reasoning: str
    notes: list[str]
    requires_approval: bool
    approval_reasons: list[str]
    gate: str | None


class Approval(Model):
    by: str
    reason: str | None
    at: datetime


class Escalation(Model):
    """An expired approval handed to a queue (``at``, ``queue``), and, when that expired too with
    ``then: wait``, since when it waits with no deadline."""

    at: datetime | None = None
    queue: str | None = None
    from_deciders: list[str] = []
    waiting_since: datetime | None = None


class Pause(Model):
    """Why a run waits for a human, and what a resumer must send."""

    gate: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    payload_schema: dict[str, Any]
    deciders: list[str]
    approvals_required: int = 1
    initiator_may_approve: bool = False
    approvals: list[Approval] = []
    on_expiry: dict[str, Any] | None = None
    step_id: str | None = None
    """Set when a step with ``on_failure: pause`` failed: approving skips it."""
    escalated: Escalation | None = None


class StepRecord(Model):
    """Where one playbook step stands on this run."""

    status: StepStatus
    order: int
    since: datetime | None = None
    tool: str | None = None
    input: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    duration_minutes: float | None = None
    ai_confidence: float | None = None
    ai_insights: str | None = None
    event_seq: int | None = None
    attempts: int | None = None
    error: str | None = None
    failed_at: datetime | None = None
    skipped_by: str | None = None
    note: str | None = None


class Decision(Model):
    gate: str
    decision: str
    by: str
    reason: str | None
    at: datetime
    automatic: bool = False


class Feedback(Model):
    """Feedback's record of how the run ended (the ``feedback.recorded`` payload)."""

    outcome: str
    duration_seconds: float
    playbook_id: str | None
    playbook_version: int | None
    total_steps: int
    completed_steps: int
    human_interventions: int
    last_actor: str | None
    severity: str | None
    triage_confidence: float | None
    approval_required: bool


class SlaMark(Model):
    """The SLA sweep's marks on the run: each level is applied once."""

    level: str
    deadline: datetime
    sweep_run_id: str
    at_risk_at: datetime | None = None
    breached_at: datetime | None = None


class RunState(Model):
    """Everything the agents and people have done to a run, beyond its queryable columns."""

    schema_version: int
    """Required, never defaulted: a default would be left out of the JSON, and a state without it
    reads as version 1. ``new_state()`` sets it."""
    requested_playbook: str | None = None
    """A playbook the run's starter named (``id`` or ``id@version``); Policy assigns it if approved."""
    triage: TriageResult | None = None
    policy: PolicyDecision | None = None
    pause: Pause | None = None
    steps: dict[str, StepRecord] = {}
    total_steps: int = 0
    pending_calls: list[str] = []
    """``call_tool`` steps claimed and not yet answered: a worker makes them after the commit."""
    waiting_steps: list[str] = []
    awaiting_next_step: bool = False
    """A playbook run ``mode: stepwise`` has its next step ready and waits for run-next-step to take it."""
    decisions: list[Decision] = []
    human_interventions: int = 0
    last_actor: str | None = None
    feedback: Feedback | None = None
    severity: str | None = None
    """The SLA sweep's raised severity; ``None`` while triage's stands."""
    sla: SlaMark | None = None
    error: str | None = None
    owner: str | None = None
    exception_status: str | None = None
    job: str | None = None
    """A job workflow's kind (``sla_sweep``, ``ingest``, ``feedback_digest``); ``None`` for a pipeline run."""
    summary: dict[str, Any] | None = None
    """A job's summary, as its ``workflow.completed`` event carries it."""

    @property
    def current_severity(self) -> str | None:
        """The SLA sweep's raised severity when it raised one, else triage's."""
        return self.severity or (self.triage.severity if self.triage else None)

    @property
    def playbook_key(self) -> str | None:
        """The assigned playbook as the catalog looks it up (``id@version``)."""
        policy = self.policy
        if policy is None or policy.playbook_id is None:
            return None
        return f"{policy.playbook_id}@{policy.playbook_version}" if policy.playbook_version else policy.playbook_id

    def step(self, step_id: str) -> StepRecord | None:
        return self.steps.get(step_id)

    def step_status(self, step_id: str) -> StepStatus:
        record = self.steps.get(step_id)
        return record.status if record is not None else StepStatus.PENDING


def new_state(**fields: Any) -> RunState:
    """An empty state of the current version (what a new run starts with)."""
    return RunState(schema_version=CURRENT_SCHEMA_VERSION, **fields)


def with_step(state: RunState, step_id: str, record: StepRecord) -> dict[str, StepRecord]:
    """The steps with ``step_id`` replaced: steps are never changed in place, so a run read
    before a change still shows what it was."""
    return {**state.steps, step_id: record}


def replaced(record: Any, **changes: Any) -> Any:
    """A copy of a state part with ``changes``."""
    return msgspec.structs.replace(record, **changes)
