"""The run's state machine.

received → triaged → policy_evaluated → [paused ⇄ resumed] → resolving → [waiting_for_input]
→ resolved → completed; failed, rejected and cancelled are the other ends.

A job workflow's run (an SLA sweep, an ingest, a digest) is ``running`` until it ends
``completed`` or ``failed``.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    RECEIVED = "received"
    TRIAGED = "triaged"
    POLICY_EVALUATED = "policy_evaluated"
    PAUSED = "paused"
    RESUMED = "resumed"
    RESOLVING = "resolving"
    WAITING_FOR_INPUT = "waiting_for_input"
    RESOLVED = "resolved"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RUNNING = "running"


TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.REJECTED, RunStatus.CANCELLED})
WAITING = frozenset({RunStatus.PAUSED, RunStatus.WAITING_FOR_INPUT})
ACTIVE = frozenset(set(RunStatus) - TERMINAL - WAITING)

STAGE_OF: dict[RunStatus, str] = {
    RunStatus.RECEIVED: "triage",
    RunStatus.TRIAGED: "policy",
    RunStatus.POLICY_EVALUATED: "resolution",
    RunStatus.PAUSED: "approval",
    RunStatus.RESUMED: "resolution",
    RunStatus.RESOLVING: "resolution",
    RunStatus.WAITING_FOR_INPUT: "resolution",
    RunStatus.RESOLVED: "feedback",
    RunStatus.RUNNING: "job",
}
"""The stage a run in each status is in (or about to enter)."""
