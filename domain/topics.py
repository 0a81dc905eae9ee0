"""Every topic the service writes to a run's event log, in one place.

A ``StrEnum``: a member is the ``str`` it names, so the store, the bus and the streams carry it
unchanged. Each topic's payload is a model in ``domain.event_payloads`` (``PAYLOADS``), which is
what ``/asyncapi.json`` and ``/openapi.json`` document for stream consumers."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    # A run's life (pipeline and job runs alike)
    RUN_RECEIVED = "run.received"
    RUN_PAUSED = "run.paused"
    RUN_APPROVAL_RECORDED = "run.approval_recorded"
    HITL_RESUMED = "dashboard.hitl_resumed"
    RUN_REJECTED = "run.rejected"
    RUN_RESOLVED = "run.resolved"
    RUN_WAITING_FOR_INPUT = "run.waiting_for_input"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    # The agents
    TRIAGE_COMPLETED = "triage.completed"
    POLICY_EVALUATED = "policy.evaluated"
    FEEDBACK_RECORDED = "feedback.recorded"
    # The assigned playbook
    PLAYBOOK_STARTED = "playbook.started"
    PLAYBOOK_STEP_STARTED = "playbook.step_started"
    PLAYBOOK_STEP_WAITING = "playbook.step_waiting"
    PLAYBOOK_STEP_COMPLETED = "playbook.step_completed"
    PLAYBOOK_STEP_FAILED = "playbook.step_failed"
    PLAYBOOK_STEP_OVERRIDDEN = "playbook.step_overridden"
    PLAYBOOK_NEXT_STEP_READY = "playbook.next_step_ready"
    PLAYBOOK_COMPLETED = "playbook.completed"
    PLAYBOOK_RECALCULATED = "playbook.recalculated"
    # The SLA sweep, on the runs it changes and on its own run
    SLA_AT_RISK = "sla.at_risk"
    SLA_BREACHED = "sla.breached"
    APPROVAL_EXPIRED = "approval.expired"
    APPROVAL_ESCALATED = "approval.escalated"
    NOTIFICATION_SENT = "notification.sent"
    # Workflows, schedules and jobs
    WORKFLOW_TRIGGERED = "dashboard.workflow_triggered"
    SCHEDULE_FIRED = "schedule.fired"
    WORKFLOW_COMPLETED = "workflow.completed"
    INGEST_ITEM_RECEIVED = "ingest.item_received"
    INGEST_ITEM_STARTED = "ingest.item_started"
    INGEST_ITEM_REJECTED = "ingest.item_rejected"
    FEEDBACK_DIGEST = "feedback.digest"
