"""What the events of a run's life, its agents and its playbook carry: one pydantic model per
topic, as a reader of the event log or of a live stream finds it in ``payload``. The registry
(topic -> model) and the version are in ``domain.events``; jobs' and schedules' payloads in
``domain.job_event_payloads``.

Closed (``extra="forbid"``) except what is open by design: an exception's body, a resumer's
payload, a JSON Schema, a job's summary. A field is optional only where the code leaves it out
(a run-state part's defaults are left out of its JSON) or writes it for some paths only."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

Severity = Literal["low", "medium", "high", "critical"]
"""As ``config.severity.Severity`` (the domain layer imports nothing above it)."""
TriggerType = Literal["api", "manual", "scheduled", "ingest"]
Decision = Literal["approve", "reject"]


class Payload(BaseModel):
    """Closed: a key the model does not name is a drift the conformance test reports."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


# --- parts shared by several payloads ---------------------------------------------------------


class PlaybookIdentity(Payload):
    """How every playbook lifecycle event names its playbook (seed 002): the id, and the version apart."""

    playbook_id: str
    """The playbook's id, without a version."""
    playbook_name: str
    playbook_version: int
    """The version of ``playbook_id`` this run follows."""


class StepIdentity(PlaybookIdentity):
    step_id: str
    step_name: str
    step_order: int
    """The step's position in the playbook, from 1."""


class PlaybookCandidate(Payload):
    playbook_id: str
    playbook_version: int
    reasoning: str


class ExpiryRule(Payload):
    """What the SLA sweep does with the approval if nobody decides by ``expires_at``."""

    action: Literal["reject", "approve", "reassign"]
    reason: str
    queue: str | None
    """``reassign``: the escalation queue that decides instead."""
    extend_minutes: float
    """``reassign``: how long the escalation queue has."""
    then: Literal["reject", "approve", "wait"]
    """``reassign``: what happens when the escalation queue lets it expire too."""


class RecordedApproval(Payload):
    by: str
    reason: str | None
    at: datetime


class PauseEscalation(Payload):
    at: datetime | None = None
    queue: str | None = None
    from_deciders: list[str] = []
    waiting_since: datetime | None = None


# --- a run's life -----------------------------------------------------------------------------


class ExceptionRunReceived(Payload):
    """A pipeline run: the exception it was started with."""

    trigger_type: TriggerType
    exception: dict[str, Any]
    """The exception as accepted (the body of ``POST /api/v1/exceptions``)."""


class JobRunReceived(Payload):
    """A job workflow's run (SLA sweep, ingest, feedback digest): its checked parameters."""

    trigger_type: TriggerType
    trigger_ref: str | None
    """The schedule that fired it, if one did."""
    params: dict[str, Any]


class RunReceived(RootModel[ExceptionRunReceived | JobRunReceived]):
    """The run was recorded: always its first event."""


class RunPaused(Payload):
    """The run waits for a human decision at a gate; ``payload_schema`` is what a resumer must send."""

    gate: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    payload_schema: dict[str, Any]
    """A JSON Schema for the body of the resume request's ``payload``."""
    deciders: list[str]
    """``role:<role>`` or ``queue:<queue>`` entries."""
    approvals_required: int = 1
    initiator_may_approve: bool = False
    approvals: list[RecordedApproval] = []
    on_expiry: ExpiryRule | None = None
    step_id: str | None = None
    """Set when a step with ``on_failure: pause`` failed: approving skips it."""
    escalated: PauseEscalation | None = None


class RunApprovalRecorded(Payload):
    """One more distinct approval; the gate still waits for ``approvals_required``."""

    gate: str
    approvals: int
    approvals_required: int
    reason: str | None


class HitlResumed(Payload):
    """A gate was decided (approved, or rejected), by a person or by the SLA sweep."""

    gate: str
    decision: Decision
    payload: dict[str, Any]
    """The resume payload as sent (it fits the gate's ``payload_schema``)."""
    paused_reason: str
    requested_at: datetime
    approved_by: list[str]


class RunRejected(Payload):
    gate: str
    reason: str | None


class ResolvedWithoutPlaybook(Payload):
    note: str


class RunResolved(RootModel[PlaybookIdentity | ResolvedWithoutPlaybook]):
    """Resolution is done: the playbook's steps are, or a human approved a run with no playbook."""


class RunWaitingForInput(Payload):
    steps: list[str]
    """The steps waiting for a completion from a person or a model."""


class RunCompleted(Payload):
    duration_seconds: float


class RunFailed(Payload):
    error: str


# --- the agents -------------------------------------------------------------------------------


class TriageCompleted(Payload):
    """Triage's classification and the playbooks that match, best first."""

    source: Literal["rules", "llm"]
    rule_id: str | None
    domain: str
    exception_type: str
    severity: Severity
    confidence: float
    sla_minutes_remaining: float | None
    tags: list[str]
    reasons: list[str]
    suggested_playbook_id: str | None
    suggested_playbook_version: int | None
    playbook_reasoning: str | None
    candidates: list[PlaybookCandidate]
    llm_error: str | None = None
    """Present when the model was asked and failed; the rules' result stands."""
    llm_confidence: float | None = None
    rules_confidence: float | None = None


class PolicyEvaluated(Payload):
    """Policy's assignment and whether a human must approve first."""

    playbook_id: str | None
    playbook_version: int | None
    playbook_name: str | None
    reasoning: str
    notes: list[str]
    requires_approval: bool
    approval_reasons: list[str]
    gate: str | None


class FeedbackRecorded(Payload):
    """How the run ended, written for every outcome."""

    outcome: Literal["completed", "rejected", "failed"]
    duration_seconds: float
    playbook_id: str | None
    playbook_version: int | None
    total_steps: int
    completed_steps: int
    human_interventions: int
    last_actor: str | None
    severity: Severity | None
    triage_confidence: float | None
    approval_required: bool


# --- the playbook -----------------------------------------------------------------------------


class PlaybookStarted(PlaybookIdentity):
    total_steps: int


class PlaybookStepStarted(StepIdentity):
    """A ``call_tool`` step was claimed; a worker makes the call once this is committed."""

    action_type: Literal["call_tool"]
    tool: str
    input: dict[str, Any]
    """The tool's input, placeholders resolved."""


class PlaybookStepWaiting(StepIdentity):
    """A step waits for a completion (``POST /api/v1/playbook-runs/{run}/complete-step/{step}``)."""

    step_type: Literal["human", "ai"]
    action_type: str
    assignee: str | None
    """``user:<id>`` or ``queue:<name>``; completing it for someone else needs ``steps:override``."""
    output_contract: dict[str, dict[str, Any]]
    """The outputs a completion must send, by name."""


class PlaybookStepCompleted(StepIdentity):
    """An automatic step ran, a tool answered, or a person or a model completed the step."""

    action_type: str
    actor_type: str
    """``agent`` for automatic steps and tools; else the completing actor's kind (``user``)."""
    actor_id: str
    notes: str
    outputs: dict[str, Any]
    tool: str | None = None
    """``call_tool`` steps only."""
    attempts: int | None = None
    """``call_tool`` steps only: calls made, retries included."""
    ai_confidence: float | None = None
    """Completions over the API only, as is everything below."""
    actual_duration_minutes: float | None = None
    assignee: str | None = None
    override: bool | None = None
    """Whether the completer was not the step's assignee (a ``playbook.step_overridden`` follows)."""


class PlaybookStepFailed(StepIdentity):
    action_type: str
    error: str
    on_failure: Literal["fail", "pause"]
    """``fail`` ends the run; ``pause`` waits at the ``step_failed`` gate, where approving skips the step."""
    tool: str | None = None
    """``call_tool`` steps only."""
    attempts: int | None = None
    """``call_tool`` steps only."""


class PlaybookStepOverridden(PlaybookIdentity):
    """Someone completed a step assigned to another user or queue (``steps:override``)."""

    step_id: str
    assignee: str
    why: str


class PlaybookNextStepReady(StepIdentity):
    """A ``mode: stepwise`` playbook's next step waits for ``run-next-step`` with ``mode: execute``."""


class PlaybookCompleted(PlaybookIdentity):
    total_steps: int
    completed_by: str
    completed_at: datetime


class PlaybookRecalculated(Payload):
    """Matching was re-run and chose a different playbook; progress restarts at its first step."""

    previous_playbook_id: str | None
    previous_playbook_version: int | None
    previous_step: str | None
    """The first step the previous playbook had not finished."""
    new_playbook_id: str | None
    """The same as ``playbook_id`` (seed 002's name for it)."""
    new_step: str | None
    playbook_id: str | None
    """``None``: no approved playbook matches any more."""
    playbook_name: str | None
    playbook_version: int | None
    reasoning: str
