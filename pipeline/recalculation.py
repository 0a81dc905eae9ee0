"""Re-running playbook matching for a run (the library or the facts may have changed since
Triage). The assignment changes, with a ``playbook.recalculated`` event, only when the best
approved match is now a different playbook; otherwise nothing is written."""

from __future__ import annotations

from dataclasses import dataclass

from agents.policy import choose_playbook, evaluate_policy
from agents.triage import triage
from config.catalog import Catalog
from domain.errors import LoopConflict, RunNotActive
from domain.run_state import STEP_DONE, PolicyDecision, replaced
from domain.statuses import TERMINAL, RunStatus
from domain.topics import Topic
from pipeline.hitl import pause
from pipeline.transition import Transition


@dataclass(frozen=True)
class Recalculation:
    changed: bool
    previous_playbook_id: str | None
    previous_playbook_version: int | None
    playbook_id: str | None
    playbook_version: int | None
    reasoning: str


def recalculate(t: Transition, catalog: Catalog, actor: str) -> Recalculation:
    """Re-match ``t``'s run; return the outcome (whether it changed, the assignment, the reasoning)."""
    if t.status in TERMINAL:
        raise RunNotActive(f"run {t.run.id} is {t.status}; its playbook can no longer change", {"status": t.status})
    if t.state.pending_calls:
        raise LoopConflict(f"run {t.run.id} has a tool call in flight; recalculate once it has answered")
    fresh = triage(t.run.exception, catalog.triage, catalog.playbooks.values(), t.now)
    chosen, notes = choose_playbook(t.run.tenant_id, fresh, catalog, t.state.requested_playbook)
    policy = t.state.policy or PolicyDecision(
        playbook_id=None, playbook_version=None, playbook_name=None, reasoning="", notes=[],
        requires_approval=False, approval_reasons=[], gate=None,
    )
    new_id, new_version = (chosen.playbook_id, chosen.playbook_version) if chosen else (None, None)
    outcome = Recalculation(
        changed=(new_id, new_version) != (policy.playbook_id, policy.playbook_version),
        previous_playbook_id=policy.playbook_id, previous_playbook_version=policy.playbook_version,
        playbook_id=new_id, playbook_version=new_version,
        reasoning=chosen.reasoning if chosen else "no approved playbook matched",
    )
    if not outcome.changed:
        return outcome
    playbook = catalog.playbook(f"{new_id}@{new_version}") if chosen else None
    previous_step = next(
        (sid for sid, rec in sorted(t.state.steps.items(), key=lambda kv: kv[1].order) if rec.status not in STEP_DONE),
        None,
    )
    t.state.policy = replaced(
        policy, playbook_id=new_id, playbook_version=new_version, playbook_name=playbook.name if playbook else None,
        reasoning=outcome.reasoning, notes=[*policy.notes, *notes],
    )
    t.state.steps = {}
    t.state.waiting_steps = []
    t.state.awaiting_next_step = False
    t.emit(Topic.PLAYBOOK_RECALCULATED, actor, {
        "previous_playbook_id": policy.playbook_id,
        "previous_playbook_version": policy.playbook_version,
        "previous_step": previous_step,
        "new_playbook_id": new_id,
        "new_step": playbook.steps[0].id if playbook else None,
        "playbook_id": new_id,
        "playbook_name": playbook.name if playbook else None,
        "playbook_version": new_version,
        "reasoning": outcome.reasoning,
    })
    t.state.triage = fresh
    decision = evaluate_policy(t.run.tenant_id, fresh, t.run.exception, catalog, t.state.requested_playbook)
    if t.status in (RunStatus.WAITING_FOR_INPUT, RunStatus.RESOLVING):
        if decision.requires_approval:  # the new assignment goes through the gate like the first
            gate = catalog.policies.for_tenant(t.run.tenant_id).gate
            pause(t, gate, decision.approval_reasons, actor)
        else:
            t.status = RunStatus.RESOLVING  # walk the new playbook from its first step
    return outcome
