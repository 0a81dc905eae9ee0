"""The topic registry: each ``Topic`` with the model of its payload, and their JSON Schemas.

The models (``domain.event_payloads``, ``domain.job_event_payloads``) describe what the code writes;
nothing validates against them when an event is emitted, which stays on the hot path as a dict.
``tests/api/test_event_payloads.py`` drives every path that writes an event and validates each one
against its topic's model, so a payload that drifts fails there, naming the topic. ``/asyncapi.json``
and ``/openapi.json`` serve these schemas to stream consumers.

``PAYLOADS_VERSION`` versions the set as a whole: an incompatible change to any payload (a field
removed, renamed or retyped, a new value a closed field did not allow) bumps it; a new optional field
or a new topic does not."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from domain.event_payloads import (
    FeedbackRecorded,
    HitlResumed,
    PlaybookCompleted,
    PlaybookNextStepReady,
    PlaybookRecalculated,
    PlaybookStarted,
    PlaybookStepCompleted,
    PlaybookStepFailed,
    PlaybookStepOverridden,
    PlaybookStepStarted,
    PlaybookStepWaiting,
    PolicyEvaluated,
    RunApprovalRecorded,
    RunCompleted,
    RunFailed,
    RunPaused,
    RunReceived,
    RunRejected,
    RunResolved,
    RunWaitingForInput,
    TriageCompleted,
)
from domain.job_event_payloads import (
    ApprovalEscalated,
    ApprovalExpired,
    FeedbackDigest,
    IngestItemReceived,
    IngestItemRejected,
    IngestItemStarted,
    NotificationSent,
    ScheduleFired,
    SlaAtRisk,
    SlaBreached,
    WorkflowCompleted,
    WorkflowTriggered,
)
from domain.topics import Topic

PAYLOADS_VERSION = 1

PAYLOADS: dict[Topic, type[BaseModel]] = {
    Topic.RUN_RECEIVED: RunReceived,
    Topic.RUN_PAUSED: RunPaused,
    Topic.RUN_APPROVAL_RECORDED: RunApprovalRecorded,
    Topic.HITL_RESUMED: HitlResumed,
    Topic.RUN_REJECTED: RunRejected,
    Topic.RUN_RESOLVED: RunResolved,
    Topic.RUN_WAITING_FOR_INPUT: RunWaitingForInput,
    Topic.RUN_COMPLETED: RunCompleted,
    Topic.RUN_FAILED: RunFailed,
    Topic.TRIAGE_COMPLETED: TriageCompleted,
    Topic.POLICY_EVALUATED: PolicyEvaluated,
    Topic.FEEDBACK_RECORDED: FeedbackRecorded,
    Topic.PLAYBOOK_STARTED: PlaybookStarted,
    Topic.PLAYBOOK_STEP_STARTED: PlaybookStepStarted,
    Topic.PLAYBOOK_STEP_WAITING: PlaybookStepWaiting,
    Topic.PLAYBOOK_STEP_COMPLETED: PlaybookStepCompleted,
    Topic.PLAYBOOK_STEP_FAILED: PlaybookStepFailed,
    Topic.PLAYBOOK_STEP_OVERRIDDEN: PlaybookStepOverridden,
    Topic.PLAYBOOK_NEXT_STEP_READY: PlaybookNextStepReady,
    Topic.PLAYBOOK_COMPLETED: PlaybookCompleted,
    Topic.PLAYBOOK_RECALCULATED: PlaybookRecalculated,
    Topic.SLA_AT_RISK: SlaAtRisk,
    Topic.SLA_BREACHED: SlaBreached,
    Topic.APPROVAL_EXPIRED: ApprovalExpired,
    Topic.APPROVAL_ESCALATED: ApprovalEscalated,
    Topic.NOTIFICATION_SENT: NotificationSent,
    Topic.WORKFLOW_TRIGGERED: WorkflowTriggered,
    Topic.SCHEDULE_FIRED: ScheduleFired,
    Topic.WORKFLOW_COMPLETED: WorkflowCompleted,
    Topic.INGEST_ITEM_RECEIVED: IngestItemReceived,
    Topic.INGEST_ITEM_STARTED: IngestItemStarted,
    Topic.INGEST_ITEM_REJECTED: IngestItemRejected,
    Topic.FEEDBACK_DIGEST: FeedbackDigest,
}
"""Every topic's payload model; ``Topic`` and this registry name the same topics."""


def payload_schemas(ref_template: str = "#/$defs/{model}") -> tuple[dict[Topic, dict[str, Any]], dict[str, Any]]:
    """Each topic's payload JSON Schema (a ``$ref``) and the definitions they refer to, shared parts once."""
    refs, defs = models_json_schema(
        [(model, "validation") for model in PAYLOADS.values()], ref_template=ref_template,
    )
    return {topic: refs[(model, "validation")] for topic, model in PAYLOADS.items()}, defs.get("$defs", {})
