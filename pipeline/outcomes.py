"""How a run ends: Feedback's record, written for every outcome (completed, rejected, failed)."""

from __future__ import annotations

from agents.feedback import summarize
from domain.statuses import RunStatus
from pipeline.transition import Transition

OPEN = frozenset({"pending", "ready", "in_progress", "waiting_for_input", "waiting_for_signal"})


def record_feedback(t: Transition, outcome: str) -> None:
    """Feedback's record of how the run ended; steps still waiting then are closed as skipped."""
    open_steps = {sid: rec for sid, rec in t.state.get("steps", {}).items() if rec.get("status") in OPEN}
    if open_steps:
        t.state["steps"] = {
            **t.state["steps"],
            **{sid: {**rec, "status": "skipped", "note": f"run ended {outcome}"} for sid, rec in open_steps.items()},
        }
    t.state.pop("waiting_steps", None)
    t.state["feedback"] = summarize(t.state, outcome, t.run.created_at, t.now)
    t.emit("feedback.recorded", "agent:feedback", t.state["feedback"])


def fail(t: Transition, error: str, actor: str) -> None:
    """End the run as failed, with the reason and Feedback's record of it."""
    t.status = RunStatus.FAILED
    t.state["error"] = error
    t.emit("run.failed", actor, {"error": error})
    record_feedback(t, "failed")
