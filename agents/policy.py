"""Policy: check Triage's suggestion against the tenant's approved playbooks and guardrails,
assign one, and decide whether a human must approve before anything runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from config.catalog import Catalog
from config.policies import TenantPolicy
from config.severity import Severity


def _approval_reasons(
    triage: dict[str, Any], exception: dict[str, Any], policy: TenantPolicy, risky: bool
) -> list[str]:
    triggers = policy.require_approval
    reasons = []
    if Severity(triage["severity"]) in triggers.severity_in:
        reasons.append(f"severity {triage['severity']} requires approval")
    amount = exception.get("amount")
    if triggers.amount_gte is not None and amount is not None:
        if Decimal(str(amount)) >= triggers.amount_gte:
            reasons.append(
                f"amount {amount} {exception.get('currency', '')} is at or over {triggers.amount_gte}".strip()
            )
    if triggers.confidence_lt is not None and triage["confidence"] < triggers.confidence_lt:
        reasons.append(f"triage confidence {triage['confidence']} is under {triggers.confidence_lt}")
    if triggers.risky_playbook and risky:
        reasons.append("the playbook contains a risky step")
    return reasons


def choose_playbook(
    tenant_id: str, triage: dict[str, Any], catalog: Catalog
) -> tuple[dict[str, Any] | None, list[str]]:
    """The best of Triage's candidates that the tenant approves, and notes on what was passed over."""
    policy = catalog.policies.for_tenant(tenant_id)
    suggested = triage.get("suggested_playbook")
    approved = [c for c in triage["candidates"] if policy.approves(c["playbook"].split("@")[0])]
    chosen = approved[0] if approved else None
    notes = []
    if suggested and (chosen is None or chosen["playbook"] != suggested):
        notes.append(f"suggested {suggested} is not approved for tenant {tenant_id}")
    return chosen, notes


def evaluate_policy(
    tenant_id: str, triage: dict[str, Any], exception: dict[str, Any], catalog: Catalog
) -> dict[str, Any]:
    """The policy decision as stored on the run and in the ``policy.evaluated`` event."""
    policy = catalog.policies.for_tenant(tenant_id)
    chosen, notes = choose_playbook(tenant_id, triage, catalog)
    playbook = catalog.playbook(chosen["playbook"]) if chosen else None
    reasons = _approval_reasons(triage, exception, policy, bool(playbook and playbook.has_risky_step))
    if playbook is None:
        reasons.append("no approved playbook matches; a human must decide")
    return {
        "playbook": chosen["playbook"] if chosen else None,
        "playbook_name": playbook.name if playbook else None,
        "reasoning": chosen["reasoning"] if chosen else "no approved playbook matched",
        "notes": notes,
        "requires_approval": bool(reasons),
        "approval_reasons": reasons,
        "gate": policy.gate.name if reasons else None,
    }
