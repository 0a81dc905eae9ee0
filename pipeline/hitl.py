"""Human in the loop: pausing a run with the reason and the payload a resumer must send,
checking a resume payload against that schema, and applying the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from config.policies import ApprovalGate
from domain.errors import AlreadyApproved, Forbidden, ValidationFailed
from domain.run_state import Approval, Decision, Pause, StepStatus, replaced, with_step
from domain.state_codec import as_payload
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.outcomes import record_feedback
from pipeline.transition import Transition

DECISIONS = ("approve", "reject")
"""Whatever else a gate's schema allows, the decision itself must be one of these."""
STEP_FAILED_GATE = "step_failed"
"""The gate a run waits at when a step with ``on_failure: pause`` failed: approving skips the step."""


def pause(t: Transition, gate: ApprovalGate, reasons: list[str], actor: str, step_id: str | None = None) -> None:
    expires_at = t.now + timedelta(minutes=gate.expires_after_minutes)
    t.status = RunStatus.PAUSED
    t.pause_expires_at = expires_at
    t.state.pause = Pause(
        gate=gate.name,
        reason="; ".join(reasons),
        requested_at=t.now,
        expires_at=expires_at,
        payload_schema=gate.payload_schema,
        deciders=list(gate.deciders),
        approvals_required=gate.approvals_required,
        initiator_may_approve=gate.initiator_may_approve,
        on_expiry=gate.on_expiry.model_dump(mode="json"),
        step_id=step_id,
    )
    t.emit(Topic.RUN_PAUSED, actor, as_payload(t.state.pause))


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(schema_json))


def check_payload(schema: dict[str, Any], payload: dict[str, Any]) -> None:
    """Raise ``ValidationFailed`` naming every field of ``payload`` that does not fit."""
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode())
    problems = []
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        path = list(error.absolute_path)
        field = "payload" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        if error.validator == "required":
            missing = [name for name in error.validator_value if name not in (error.instance or {})]
            field += "".join(f".{name}" for name in missing[:1])
        elif error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            field += "".join(f".{name}" for name in extra[:1])
        problems.append({"field": field, "message": error.message})
    if not problems and payload.get("decision") not in DECISIONS:
        problems.append({"field": "payload.decision", "message": f"decision must be one of {', '.join(DECISIONS)}"})
    if problems:
        raise ValidationFailed(
            f"the resume payload does not fit the gate's schema ({problems[0]['field']})", problems
        )


@dataclass(frozen=True)
class Decider:
    """Who is deciding: their actor string, roles and queues. ``trusted`` marks the engine's own
    callers (an escalation sweep, a benchmark), which the gate's rules do not apply to."""

    actor: str
    roles: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    trusted: bool = False


def check_decider(pause_info: Pause, started_by: str, decider: Decider, decision: str) -> None:
    """Raise ``Forbidden`` unless the gate lets ``decider`` take ``decision``; ``AlreadyApproved``
    for a second approval by the same person."""
    if decider.trusted:
        return
    gate, deciders = pause_info.gate, pause_info.deciders
    holds = {f"role:{r}" for r in decider.roles} | {f"queue:{q}" for q in decider.queues}
    if not holds & set(deciders):
        raise Forbidden(f"gate {gate} is decided by {', '.join(deciders)}", {"gate": gate, "deciders": deciders})
    if decision != "approve":
        return
    if decider.actor == started_by and not pause_info.initiator_may_approve:
        raise Forbidden(f"{decider.actor} started this run and may not approve it at gate {gate}", {"gate": gate})
    if decider.actor in (a.by for a in pause_info.approvals):
        raise AlreadyApproved(f"{decider.actor} has already approved; gate {gate} needs another person")


def apply_decision(t: Transition, payload: dict[str, Any], actor: str, *, automatic: bool = False) -> str:
    """Record the decision on a paused run; return the run's new status (still ``paused`` while
    the gate waits for more distinct approvals). An ``automatic`` decision (the SLA sweep acting
    on an expired approval) completes the gate however many approvals it still needed, and is
    not counted as a human intervention."""
    state = t.state
    pause_info = state.pause
    assert pause_info is not None, "a decision applies to a paused run"
    decision, reason = payload["decision"], payload.get("reason")
    if not automatic:
        state.human_interventions += 1
    state.decisions = [*state.decisions, Decision(
        gate=pause_info.gate, decision=decision, by=actor, reason=reason, at=t.now, automatic=automatic,
    )]
    if decision == "approve":
        approvals = [*pause_info.approvals, Approval(by=actor, reason=reason, at=t.now)]
        if len(approvals) < pause_info.approvals_required and not automatic:
            state.pause = replaced(pause_info, approvals=approvals)
            t.emit(Topic.RUN_APPROVAL_RECORDED, actor, {
                "gate": pause_info.gate, "approvals": len(approvals),
                "approvals_required": pause_info.approvals_required, "reason": reason,
            })
            return str(t.status)
        pause_info = replaced(pause_info, approvals=approvals)
    state.pause = None
    t.pause_expires_at = None
    t.emit(Topic.HITL_RESUMED, actor, {
        "gate": pause_info.gate, "decision": decision, "payload": payload,
        "paused_reason": pause_info.reason, "requested_at": pause_info.requested_at.isoformat(),
        "approved_by": [a.by for a in pause_info.approvals],
    })
    if decision == "reject":
        t.status = RunStatus.REJECTED
        t.emit(Topic.RUN_REJECTED, actor, {"gate": pause_info.gate, "reason": reason})
        record_feedback(t, "rejected")
    else:
        t.status = RunStatus.RESUMED
        if pause_info.step_id and (failed := state.steps.get(pause_info.step_id)) is not None:
            state.steps = with_step(state, pause_info.step_id,
                                    replaced(failed, status=StepStatus.SKIPPED, skipped_by=actor))
    return str(t.status)
