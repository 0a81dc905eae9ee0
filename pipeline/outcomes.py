"""How a run ends: Feedback's record, written for every outcome (completed, rejected, failed)."""

from __future__ import annotations

from agents.feedback import summarize
from domain.run_state import STEP_OPEN, Feedback, StepStatus, replaced
from domain.state_codec import as_payload
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.transition import Transition


def record_feedback(t: Transition, outcome: str) -> Feedback:
    """Feedback's record of how the run ended; steps still open then are closed as skipped."""
    state = t.state
    if any(rec.status in STEP_OPEN for rec in state.steps.values()):
        state.steps = {
            sid: replaced(rec, status=StepStatus.SKIPPED, note=f"run ended {outcome}") if rec.status in STEP_OPEN
            else rec
            for sid, rec in state.steps.items()
        }
    state.waiting_steps = []
    state.awaiting_next_step = False
    state.feedback = summarize(state, outcome, t.run.created_at, t.now)
    t.emit(Topic.FEEDBACK_RECORDED, "agent:feedback", as_payload(state.feedback))
    return state.feedback


def fail(t: Transition, error: str, actor: str) -> None:
    """End the run as failed, with the reason and Feedback's record of it."""
    t.status = RunStatus.FAILED
    t.state.error = error
    t.emit(Topic.RUN_FAILED, actor, {"error": error})
    record_feedback(t, "failed")
