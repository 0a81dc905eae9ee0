"""How a run ends: Feedback's record, written for every outcome (completed, rejected, failed)."""

from __future__ import annotations

from agents.feedback import summarize
from pipeline.statuses import RunStatus
from pipeline.transition import Transition


def record_feedback(t: Transition, outcome: str) -> None:
    t.state["feedback"] = summarize(t.state, outcome, t.run.created_at, t.now)
    t.emit("feedback.recorded", "agent:feedback", t.state["feedback"])


def fail(t: Transition, error: str, actor: str) -> None:
    """End the run as failed, with the reason and Feedback's record of it."""
    t.status = RunStatus.FAILED
    t.state["error"] = error
    t.emit("run.failed", actor, {"error": error})
    record_feedback(t, "failed")
