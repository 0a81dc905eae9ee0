"""Feedback: record what happened to a run so playbooks and thresholds can be tuned."""

from __future__ import annotations

from datetime import datetime

from domain.run_state import Feedback, RunState, StepStatus


def summarize(state: RunState, outcome: str, created_at: datetime, now: datetime) -> Feedback:
    """The ``feedback.recorded`` payload: duration, steps, human interventions, last actor."""
    policy, triage = state.policy, state.triage
    return Feedback(
        outcome=outcome,
        duration_seconds=round((now - created_at).total_seconds(), 3),
        playbook_id=policy.playbook_id if policy else None,
        playbook_version=policy.playbook_version if policy else None,
        total_steps=state.total_steps,
        completed_steps=sum(1 for s in state.steps.values() if s.status == StepStatus.COMPLETED),
        human_interventions=state.human_interventions,
        last_actor=state.last_actor,
        severity=triage.severity if triage else None,
        triage_confidence=triage.confidence if triage else None,
        approval_required=policy.requires_approval if policy else False,
    )
