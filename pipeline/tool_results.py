"""Recording what a ``call_tool`` step's call came back with; the Resolution stage then goes on
(or, for a failure, fails the run or pauses it, as the step's ``on_failure`` says)."""

from __future__ import annotations

from typing import Any

from agents.resolution import ACTOR, playbook_fields
from config.output_contract import contract_problems
from config.playbooks import Playbook
from domain.run_state import StepStatus, replaced, with_step
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.transition import Transition


def record_call(t: Transition, playbook: Playbook, step_id: str, answer: dict[str, Any] | None, error: str | None,
                attempts: int) -> None:
    """Settle one claimed call: completed with ``answer`` (if it meets the contract), else failed."""
    step = playbook.step(step_id)
    record = t.state.steps[step_id]
    if error is None and step is not None and (problems := contract_problems(step.outputs, answer or {})):
        error = "the tool's answer breaks the step's contract: " + "; ".join(p["message"] for p in problems)
    common = {**playbook_fields(playbook), "step_id": step_id, "step_order": record.order,
              "action_type": "call_tool", "tool": record.tool, "attempts": attempts}
    if error is None:
        record = replaced(record, status=StepStatus.COMPLETED, outputs=answer, completed_at=t.now,
                          completed_by=ACTOR, attempts=attempts)
        t.emit(Topic.PLAYBOOK_STEP_COMPLETED, ACTOR, {
            **common, "step_name": step.name if step else step_id, "actor_type": "agent", "actor_id": ACTOR,
            "notes": f"tool {record.tool} answered", "outputs": answer,
        })
    else:
        record = replaced(record, status=StepStatus.FAILED, error=error, failed_at=t.now, attempts=attempts)
        t.emit(Topic.PLAYBOOK_STEP_FAILED, ACTOR, {
            **common, "step_name": step.name if step else step_id, "error": error,
            "on_failure": step.on_failure if step else "fail",
        })
    t.state.steps = with_step(t.state, step_id, record)
    t.state.pending_calls = [s for s in t.state.pending_calls if s != step_id]
    t.status = RunStatus.RESOLVING
