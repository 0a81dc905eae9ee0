"""Policy: check Triage's suggestion against the tenant's approved playbooks and guardrails,
assign one, and decide whether a human must approve before anything runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from config.catalog import Catalog
from config.policies import TenantPolicy
from config.severity import Severity
from domain.run_state import PlaybookCandidate, PolicyDecision, TriageResult


def _approval_reasons(
    triage: TriageResult, exception: dict[str, Any], policy: TenantPolicy, risky: bool
) -> list[str]:
    triggers = policy.require_approval
    reasons = []
    if Severity(triage.severity) in triggers.severity_in:
        reasons.append(f"severity {triage.severity} requires approval")
    amount = exception.get("amount")
    if triggers.amount_gte is not None and amount is not None:
        if Decimal(str(amount)) >= triggers.amount_gte:
            reasons.append(
                f"amount {amount} {exception.get('currency', '')} is at or over {triggers.amount_gte}".strip()
            )
    if triggers.confidence_lt is not None and triage.confidence < triggers.confidence_lt:
        reasons.append(f"triage confidence {triage.confidence} is under {triggers.confidence_lt}")
    if triggers.risky_playbook and risky:
        reasons.append("the playbook contains a risky step")
    return reasons


def choose_playbook(
    tenant_id: str, triage: TriageResult, catalog: Catalog, requested: str | None = None
) -> tuple[PlaybookCandidate | None, list[str]]:
    """The best of Triage's candidates that the tenant approves (or the ``requested`` playbook,
    when a caller named one and the tenant approves it), and notes on what was passed over."""
    policy = catalog.policies.for_tenant(tenant_id)
    if requested is not None:
        playbook = catalog.playbook(requested)
        if playbook is not None and policy.approves(playbook.id):
            reasoning = f"requested by the caller: {playbook.name} ({playbook.id} v{playbook.version})"
            return PlaybookCandidate(playbook_id=playbook.id, playbook_version=playbook.version,
                                     reasoning=reasoning), []
        return None, [f"requested playbook {requested} is not approved for tenant {tenant_id}"]
    approved = [c for c in triage.candidates if policy.approves(c.playbook_id)]
    chosen = approved[0] if approved else None
    notes = []
    suggested = triage.suggested_playbook_id
    if suggested and (chosen is None or (chosen.playbook_id, chosen.playbook_version)
                      != (suggested, triage.suggested_playbook_version)):
        notes.append(f"suggested {suggested} v{triage.suggested_playbook_version} is not approved "
                     f"for tenant {tenant_id}")
    return chosen, notes


def evaluate_policy(
    tenant_id: str, triage: TriageResult, exception: dict[str, Any], catalog: Catalog, requested: str | None = None
) -> PolicyDecision:
    """The policy decision as stored on the run and in the ``policy.evaluated`` event."""
    policy = catalog.policies.for_tenant(tenant_id)
    chosen, notes = choose_playbook(tenant_id, triage, catalog, requested)
    playbook = catalog.playbook(f"{chosen.playbook_id}@{chosen.playbook_version}") if chosen else None
    reasons = _approval_reasons(triage, exception, policy, bool(playbook and playbook.has_risky_step))
    if playbook is None:
        reasons.append("no approved playbook matches; a human must decide")
    return PolicyDecision(
        playbook_id=playbook.id if playbook else None,
        playbook_version=playbook.version if playbook else None,
        playbook_name=playbook.name if playbook else None,
        reasoning=chosen.reasoning if chosen else "no approved playbook matched",
        notes=notes,
        requires_approval=bool(reasons),
        approval_reasons=reasons,
        gate=policy.gate.name if reasons else None,
    )
