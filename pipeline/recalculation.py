"""Re-running playbook matching for a run (the library or the facts may have changed since
Triage). The assignment changes, with a ``playbook.recalculated`` event, only when the best
approved match is now a different playbook; otherwise nothing is written."""

from __future__ import annotations

from typing import Any

from agents.policy import choose_playbook, evaluate_policy
from agents.resolution import DONE
from agents.triage import triage
from config.catalog import Catalog
from domain.errors import LoopConflict, RunNotActive
from pipeline.hitl import pause
from domain.statuses import TERMINAL, RunStatus
from pipeline.transition import Transition

RECALCULATED_TOPIC = "playbook.recalculated"


def recalculate(t: Transition, catalog: Catalog, actor: str) -> dict[str, Any]:
    """Re-match ``t``'s run; return the outcome (``changed``, the assignment, the reasoning)."""
    if t.status in TERMINAL:
        raise RunNotActive(f"run {t.run.id} is {t.status}; its playbook can no longer change", {"status": t.status})
    if t.state.get("pending_calls"):
        raise LoopConflict(f"run {t.run.id} has a tool call in flight; recalculate once it has answered")
    fresh = triage(t.run.exception, catalog.triage, catalog.playbooks.values(), t.now)
    chosen, notes = choose_playbook(t.run.tenant_id, fresh, catalog)
    policy = dict(t.state.get("policy") or {})
    previous = policy.get("playbook")
    new = chosen["playbook"] if chosen else None
    reasoning = chosen["reasoning"] if chosen else "no approved playbook matched"
    outcome = {"changed": new != previous, "previous_playbook": previous, "playbook": new, "reasoning": reasoning}
    if new == previous:
        return outcome
    playbook = catalog.playbook(new) if new else None
    previous_steps = t.state.get("steps", {})
    previous_step = next(
        (sid for sid, rec in sorted(previous_steps.items(), key=lambda kv: kv[1].get("order", 0))
         if rec.get("status") not in DONE),
        None,
    )
    policy.update(playbook=new, playbook_name=playbook.name if playbook else None, reasoning=reasoning,
                  notes=[*policy.get("notes", []), *notes])
    t.state["policy"] = policy
    t.state["steps"] = {}
    t.state.pop("waiting_steps", None)
    t.emit(RECALCULATED_TOPIC, actor, {
        "previous_playbook_id": previous,
        "previous_step": previous_step,
        "new_playbook_id": new,
        "new_step": playbook.steps[0].id if playbook else None,
        "playbook_name": playbook.name if playbook else None,
        "playbook_version": playbook.version if playbook else None,
        "reasoning": reasoning,
    })
    t.state["triage"] = fresh
    decision = evaluate_policy(t.run.tenant_id, fresh, t.run.exception, catalog)
    if t.status == RunStatus.WAITING_FOR_INPUT:
        if decision["requires_approval"]:  # the new assignment goes through the gate like the first
            gate = catalog.policies.for_tenant(t.run.tenant_id).gate
            pause(t, gate, decision["approval_reasons"], actor)
        else:
            t.status = RunStatus.RESOLVING  # walk the new playbook from its first step
    return outcome
