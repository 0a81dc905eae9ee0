"""Feedback: record what happened to a run so playbooks and thresholds can be tuned."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def summarize(
    state: dict[str, Any], outcome: str, created_at: datetime, now: datetime
) -> dict[str, Any]:
    """The ``feedback.recorded`` payload: duration, steps, human interventions, last actor."""
    progress = state.get("steps", {})
    triage = state.get("triage", {})
    return {
        "outcome": outcome,
        "duration_seconds": round((now - created_at).total_seconds(), 3),
        "playbook": state.get("policy", {}).get("playbook"),
        "steps_total": state.get("steps_total", 0),
        "steps_completed": sum(1 for s in progress.values() if s.get("status") == "completed"),
        "human_interventions": state.get("human_interventions", 0),
        "last_actor": state.get("last_actor"),
        "severity": triage.get("severity"),
        "triage_confidence": triage.get("confidence"),
        "approval_required": state.get("policy", {}).get("requires_approval", False),
    }
