"""Human in the loop: pausing a run with the reason and the payload a resumer must send,
checking a resume payload against that schema, and applying the decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from config.policies import DEFAULT_DECIDERS, ApprovalGate
from domain.errors import AlreadyApproved, Forbidden, ValidationFailed
from pipeline.outcomes import record_feedback
from domain.statuses import RunStatus
from pipeline.transition import Transition

RESUMED_TOPIC = "dashboard.hitl_resumed"
DECISIONS = ("approve", "reject")
"""Whatever else a gate's schema allows, the decision itself must be one of these."""
STEP_FAILED_GATE = "step_failed"
"""The gate a run waits at when a step with ``on_failure: pause`` failed: approving skips the step."""


def pause(t: Transition, gate: ApprovalGate, reasons: list[str], actor: str, step_id: str | None = None) -> None:
    expires_at = t.now + timedelta(minutes=gate.expires_after_minutes)
    t.status = RunStatus.PAUSED
    t.pause_expires_at = expires_at
    t.state["pause"] = {
        "gate": gate.name,
        "reason": "; ".join(reasons),
        "requested_at": t.now.isoformat(),
        "expires_at": expires_at.isoformat(),
        "payload_schema": gate.payload_schema,
        "deciders": gate.deciders,
        "approvals_required": gate.approvals_required,
        "initiator_may_approve": gate.initiator_may_approve,
        "approvals": [],
        "on_expiry": gate.on_expiry.model_dump(mode="json"),
        **({"step_id": step_id} if step_id else {}),
    }
    t.emit("run.paused", actor, dict(t.state["pause"]))


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


def check_decider(pause_info: dict[str, Any], started_by: str, decider: Decider, decision: str) -> None:
    """Raise ``Forbidden`` unless the gate lets ``decider`` take ``decision``; ``AlreadyApproved``
    for a second approval by the same person."""
    if decider.trusted:
        return
    gate = pause_info["gate"]
    deciders = pause_info.get("deciders", list(DEFAULT_DECIDERS))
    holds = {f"role:{r}" for r in decider.roles} | {f"queue:{q}" for q in decider.queues}
    if not holds & set(deciders):
        raise Forbidden(f"gate {gate} is decided by {', '.join(deciders)}", {"gate": gate, "deciders": deciders})
    if decision != "approve":
        return
    if decider.actor == started_by and not pause_info.get("initiator_may_approve", False):
        raise Forbidden(f"{decider.actor} started this run and may not approve it at gate {gate}", {"gate": gate})
    if decider.actor in (a["by"] for a in pause_info.get("approvals", [])):
        raise AlreadyApproved(f"{decider.actor} has already approved; gate {gate} needs another person")


def apply_decision(t: Transition, payload: dict[str, Any], actor: str, *, automatic: bool = False) -> str:
    """Record the decision on a paused run; return the run's new status (still ``paused`` while
    the gate waits for more distinct approvals). An ``automatic`` decision (the SLA sweep acting
    on an expired approval) completes the gate however many approvals it still needed, and is
    not counted as a human intervention."""
    pause_info = dict(t.state["pause"])
    decision = payload["decision"]
    if not automatic:
        t.state["human_interventions"] = t.state.get("human_interventions", 0) + 1
    t.state["decisions"] = [*t.state.get("decisions", []), {
        "gate": pause_info["gate"], "decision": decision, "by": actor,
        "reason": payload.get("reason"), "at": t.now.isoformat(), **({"automatic": True} if automatic else {}),
    }]
    if decision == "approve":
        approvals = [*pause_info.get("approvals", []), {"by": actor, "reason": payload.get("reason"),
                                                         "at": t.now.isoformat()}]
        required = pause_info.get("approvals_required", 1)
        if len(approvals) < required and not automatic:
            t.state["pause"] = {**pause_info, "approvals": approvals}
            t.emit("run.approval_recorded", actor, {
                "gate": pause_info["gate"], "approvals": len(approvals), "approvals_required": required,
                "reason": payload.get("reason"),
            })
            return str(t.status)
        pause_info["approvals"] = approvals
    t.state.pop("pause")
    t.pause_expires_at = None
    t.emit(RESUMED_TOPIC, actor, {
        "gate": pause_info["gate"], "decision": decision, "payload": payload,
        "paused_reason": pause_info["reason"], "requested_at": pause_info["requested_at"],
        "approved_by": [a["by"] for a in pause_info.get("approvals", [])],
    })
    if decision == "reject":
        t.status = RunStatus.REJECTED
        t.emit("run.rejected", actor, {"gate": pause_info["gate"], "reason": payload.get("reason")})
        record_feedback(t, "rejected")
    else:
        t.status = RunStatus.RESUMED
        if step_id := pause_info.get("step_id"):
            skipped = {**t.state["steps"][step_id], "status": "skipped", "skipped_by": actor}
            t.state["steps"] = {**t.state["steps"], step_id: skipped}
    return str(t.status)
