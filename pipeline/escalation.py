"""What the SLA sweep does to one run, as changes to its ``Transition``. Each function looks at the
run as it is now (``change_run`` calls it again after a lost race), and returns ``None`` when
nothing is due, so a run resumed, ended or already marked meanwhile is left alone and a second
sweep over the same runs writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from config.policies import ExpiryPolicy
from config.severity import Severity
from domain.run_state import Escalation, Pause, SlaMark, replaced
from domain.statuses import TERMINAL, RunStatus
from domain.topics import Topic
from pipeline.hitl import apply_decision
from pipeline.transition import Transition

AT_RISK, BREACHED = "at_risk", "breached"
ESCALATION_DECIDERS = ("role:admin",)
"""Who may decide an escalated approval besides its queue."""


@dataclass(frozen=True)
class Outcome:
    """What was done to a run: the summary counter it adds to, and the event for the sweep's log
    (none when the run was skipped)."""

    kind: str
    topic: Topic | None
    payload: dict[str, Any]


def sla_level(deadline: datetime, now: datetime, near: timedelta) -> str | None:
    if deadline <= now:
        return BREACHED
    return AT_RISK if deadline < now + near else None


def mark_sla(t: Transition, now: datetime, near: timedelta, actor: str, sweep_run_id: str) -> Outcome | None:
    """Raise the severity of an open run whose SLA is near (one level) or past (to critical), and
    notify. Each level is written once; a run mid tool call is left for the next sweep, since
    writing it now would make the call's result land on a stale version."""
    deadline = t.run.sla_deadline
    if deadline is None or t.status in TERMINAL or t.status == RunStatus.RUNNING or t.state.pending_calls:
        return None
    current = t.state.current_severity
    level = sla_level(deadline, now, near)
    done = t.state.sla.level if t.state.sla else None
    if current is None or level is None or done in (level, BREACHED):
        return None  # not triaged yet (the next sweep sees it), not due, or already marked
    before = Severity(current)
    after = Severity.CRITICAL if level == BREACHED else before.raised()
    minutes = round((deadline - now).total_seconds() / 60, 1)
    t.state.severity = str(after)
    t.state.sla = SlaMark(
        level=level, deadline=deadline, sweep_run_id=sweep_run_id,
        at_risk_at=now if level == AT_RISK else (t.state.sla.at_risk_at if t.state.sla else None),
        breached_at=now if level == BREACHED else None,
    )
    payload: dict[str, Any] = {
        "deadline": deadline.isoformat(),
        **({"minutes_remaining": minutes} if level == AT_RISK else {"minutes_overdue": -minutes}),
        "severity_from": str(before), "severity_to": str(after), "sweep_run_id": sweep_run_id,
    }
    topic = Topic.SLA_BREACHED if level == BREACHED else Topic.SLA_AT_RISK
    t.emit(topic, actor, payload)
    pause = t.state.pause if t.status == RunStatus.PAUSED else None
    target = list(pause.deciders) if pause else ["operations"]
    what = f"{t.run.exception.get('domain', '?')}/{t.run.exception.get('type', '?')}"
    when = f"is due in {minutes:g} min" if level == AT_RISK else f"is {-minutes:g} min past its SLA"
    t.emit(Topic.NOTIFICATION_SENT, actor, {
        "channel": "sla", "target": target, "sweep_run_id": sweep_run_id,
        "message": f"run {t.run.id} ({what}) {when}; severity {before} -> {after}",
    })
    return Outcome(level, topic, payload)


def expiry_policy(pause: Pause, fallback: ExpiryPolicy) -> ExpiryPolicy:
    """The policy the pause was made with; the tenant's current one for pauses older than that."""
    try:
        return ExpiryPolicy.model_validate(pause.on_expiry) if pause.on_expiry is not None else fallback
    except ValidationError:
        return fallback


def expire_approval(
    t: Transition, now: datetime, fallback: ExpiryPolicy, actor: str, sweep_run_id: str
) -> Outcome | None:
    """Act on a paused run whose approval expired: reject, approve (completing the gate), or hand
    it to an escalation queue; an escalated approval that expires again gets the policy's
    ``then``. Nothing happens to a run no longer paused or whose expiry moved meanwhile."""
    expires = t.pause_expires_at
    pause = t.state.pause
    if t.status != RunStatus.PAUSED or expires is None or expires > now or pause is None:
        return None
    policy = expiry_policy(pause, fallback)
    escalated = pause.escalated
    action = policy.then if escalated else policy.action
    expired: dict[str, Any] = {
        "gate": pause.gate, "expired_at": expires.isoformat(), "action": action,
        "escalated": bool(escalated), "sweep_run_id": sweep_run_id,
    }
    if action in ("reject", "approve"):
        expired["reason"] = policy.reason
    t.emit(Topic.APPROVAL_EXPIRED, actor, expired)
    if action == "reassign":
        return _reassign(t, pause, policy, now, actor, sweep_run_id)
    if action == "wait":
        # The queue keeps the approval with no deadline: clearing the column takes the run out of
        # later sweeps, so it is acted on once and never crowds newer expiries out of the limit.
        t.state.pause = replaced(pause, escalated=replaced(escalated or Escalation(), waiting_since=now))
        t.pause_expires_at = None
        return Outcome("left_waiting", Topic.APPROVAL_EXPIRED, expired)
    apply_decision(t, {"decision": action, "reason": policy.reason}, actor, automatic=True)
    return Outcome("expired_rejected" if action == "reject" else "expired_approved", Topic.APPROVAL_EXPIRED, expired)


def _reassign(
    t: Transition, pause: Pause, policy: ExpiryPolicy, now: datetime, actor: str, sweep_run_id: str
) -> Outcome:
    queue = f"queue:{policy.queue}"
    expires = now + timedelta(minutes=policy.extend_minutes)
    from_deciders = list(pause.deciders)
    t.state.pause = replaced(
        pause, deciders=[queue, *ESCALATION_DECIDERS], expires_at=expires,
        escalated=Escalation(at=now, queue=policy.queue, from_deciders=from_deciders),
    )
    t.pause_expires_at = expires
    payload = {
        "gate": pause.gate, "queue": policy.queue, "from_deciders": from_deciders,
        "expires_at": expires.isoformat(), "sweep_run_id": sweep_run_id,
    }
    t.emit(Topic.APPROVAL_ESCALATED, actor, payload)
    t.emit(Topic.NOTIFICATION_SENT, actor, {
        "channel": "approval_escalation", "target": [queue], "sweep_run_id": sweep_run_id,
        "message": f"approval {pause.gate} of run {t.run.id} expired undecided; "
                   f"{policy.queue} decides by {expires.isoformat()}",
    })
    return Outcome("reassigned", Topic.APPROVAL_ESCALATED, payload)
