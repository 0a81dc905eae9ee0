"""Request and response bodies. Every route's body, answer and error is one of these, and
``/openapi.json`` is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.exception_input import Body
from pipeline.hitl import DECISIONS


class RunAccepted(BaseModel):
    """The run is recorded; ``status`` is where its first committed step left it."""

    run_id: str
    workflow_id: str
    status: str
    links: dict[str, str]


class RunSummary(BaseModel):
    id: str
    workflow_id: str
    status: str
    stage: str
    trigger_type: str
    domain: str | None
    type: str | None
    amount: str | None
    currency: str | None
    severity: str | None
    playbook_id: str | None
    playbook_version: int | None
    created_at: datetime
    updated_at: datetime


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next, older page")


class StepProgress(BaseModel):
    id: str
    sequence: int
    name: str
    action: str
    type: str
    assignee: str | None
    depends_on: list[str]
    status: str
    output_contract: dict[str, Any]
    instructions: str | None = Field(None, description="What the playbook tells whoever completes the step")
    outputs: dict[str, Any] | None = None
    waiting_since: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None


class PlaybookProgress(BaseModel):
    playbook_id: str
    playbook_version: int
    name: str
    mode: Literal["automatic", "stepwise"]
    total_steps: int
    completed_steps: int
    progress_percent: float
    current_step: str | None
    steps: list[StepProgress]


class PlaybookStatus(BaseModel):
    """A run's playbook: which one, where each step stands, and how far along it is."""

    run_id: str
    state: Literal["no_playbook", "playbook_missing", "in_progress", "completed"]
    playbook_id: str | None = Field(description="The assigned playbook")
    playbook_version: int | None
    playbook: PlaybookProgress | None


class RecalculateRequest(Body):
    """No fields: matching uses the run's exception and the library as they are now."""


class PlaybookRecalculation(BaseModel):
    """The outcome of re-matching; ``changed`` is false when the assignment stayed the same."""

    run_id: str
    changed: bool
    previous_playbook_id: str | None
    previous_playbook_version: int | None
    playbook_id: str | None
    playbook_version: int | None
    reasoning: str
    run_status: str
    event_topic: str = "playbook.recalculated"


class StepCompletionPayload(Body):
    outputs: dict[str, Any] = Field(default_factory=dict, description="Must meet the step's output contract "
                                    "(`output_contract` in `GET /api/v1/runs/{run_id}/playbook`), else a 400 naming "
                                    "the field; only a step waiting for a person or a model can be completed (400)")
    ai_confidence: float | None = Field(None, ge=0, le=1)
    ai_insights: str | None = Field(None, max_length=10000)


class NextStep(BaseModel):
    step_id: str
    step_sequence: int
    step_name: str
    step_type: str
    status: str


class StepCompletionData(BaseModel):
    run_id: str
    step_id: str
    step_sequence: int
    status: Literal["completed"] = "completed"
    outputs: dict[str, Any]
    ai_confidence: float | None
    ai_insights: str | None
    completed_at: datetime
    actual_duration_minutes: float
    completion_event_id: str = Field(description="'<run_id>:<seq>' of the step's completion event")
    completion_event_seq: int
    next_steps: list[NextStep]
    run_status: str
    orchestrator_notified: bool


class StepCompletionResponse(BaseModel):
    """The step is completed; the run went on as far as it could."""

    success: Literal[True] = True
    message: str
    data: StepCompletionData


class PauseInfo(BaseModel):
    gate: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    payload_schema: dict[str, Any]
    deciders: list[str] = Field(default_factory=list, description="Who may decide: role:<r> or queue:<q>")
    approvals_required: int = 1
    approvals: list[dict[str, Any]] = Field(default_factory=list, description="Distinct approvals so far")
    escalated: dict[str, Any] | None = Field(None, description="Set when the SLA sweep reassigned it")


class RunDetail(RunSummary):
    started_by: str
    trigger_ref: str | None
    exception: dict[str, Any]
    triage: dict[str, Any] | None
    policy: dict[str, Any] | None
    pause: PauseInfo | None
    paused_step: str | None
    playbook_progress: PlaybookProgress | None
    feedback: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    error: str | None
    last_seq: int


class EventOut(BaseModel):
    id: int
    run_id: str
    seq: int
    topic: str
    actor: str
    request_id: str | None
    created_at: datetime
    payload: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_after_seq: int | None


class PendingRunItem(BaseModel):
    """A paused run awaiting a human: why it paused and what a resumer must send."""

    run_id: str
    workflow_id: str
    status: str
    trigger_type: str
    started_at: datetime
    paused_step: str
    gate: str
    reason: str
    requested_at: datetime
    expires_at: datetime
    payload_schema: dict[str, Any]
    exception: dict[str, Any]
    severity: str | None
    playbook_id: str | None
    playbook_version: int | None


class PendingRunList(BaseModel):
    items: list[PendingRunItem]
    next_cursor: str | None = None


class ResumeRunRequest(Body):
    model_config = ConfigDict(json_schema_extra={"required": ["payload"]})
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The decision; must fit the JSON Schema the pause names "
        "(`payload_schema` in `GET /api/v1/runs/{run_id}`; by default a `reason` is required to reject), else a 400 "
        "naming the field. The decider must be one the gate names and not the run's starter (else 403), and not have "
        "approved already (409)",
        json_schema_extra={"required": ["decision"], "properties": {"decision": {"enum": list(DECISIONS)}}},
    )


ResumeStatus = Literal["resuming", "rejected", "approval_recorded"]


class ResumeRunResponse(BaseModel):
    status: ResumeStatus = Field(
        description="resuming: approved, the gate opened and the run was dispatched; rejected: the run ended as "
        "rejected; approval_recorded: counted, but the gate needs more distinct approvals"
    )
    run_id: str
    workflow_id: str
    event_topic: str = "dashboard.hitl_resumed"


class TriggerWorkflowRequest(Body):
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The workflow's input, which must fit the parameters of its kind (else a "
        "400 naming the field): an `ExceptionIn` for an `exception_pipeline` workflow; for the jobs (`sla_sweep`, "
        "`ingest`, `feedback_digest`) their own parameters, and an ingest names a source declared for the tenant"
    )


class TriggerWorkflowResponse(BaseModel):
    status: Literal["dispatched"] = "dispatched"
    workflow_id: str
    run_id: str
    event_topic: str = "dashboard.workflow_triggered"


class RunRef(BaseModel):
    id: str
    status: str
    created_at: datetime


class WorkflowOut(BaseModel):
    id: str
    name: str
    description: str
    last_run: RunRef | None
    counts: dict[str, int]
    total_runs: int


class WorkflowList(BaseModel):
    items: list[WorkflowOut]


class JsonDocument(BaseModel):
    """A JSON document (this API's OpenAPI 3.1, or the event streams' AsyncAPI 3.0)"""

    model_config = ConfigDict(extra="allow")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: str
    migrations: dict[str, str | None]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail
    request_id: str | None
