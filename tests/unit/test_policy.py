"""Policy on the shipped config/policies.yaml: approval triggers per tenant, and the approved-playbook fallback."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agents.policy import evaluate_policy
from config.catalog import Catalog
from config.playbooks import Playbook
from config.policies import Policies, TenantPolicy
from domain.run_state import PlaybookCandidate, PolicyDecision, TriageResult

PlaybookRef = tuple[str, int]
CARD: PlaybookRef = ("payment-card-declined", 1)
RETRY: PlaybookRef = ("payment-processor-retry", 2)
CHARGEBACK: PlaybookRef = ("payment-chargeback-review", 1)
EXPERIMENTAL: PlaybookRef = ("experimental-refund", 1)


def triage_result(*candidates: PlaybookRef, severity: str = "low", confidence: float = 0.92) -> TriageResult:
    best = candidates[0] if candidates else (None, None)
    return TriageResult(
        source="rules", rule_id="payment-card-declined", domain="payments", exception_type="payment.failed",
        severity=severity, confidence=confidence, sla_minutes_remaining=None, tags=[], reasons=[],
        suggested_playbook_id=best[0], suggested_playbook_version=best[1],
        playbook_reasoning=f"matched {best[0]}" if candidates else None,
        candidates=[PlaybookCandidate(playbook_id=pid, playbook_version=version, reasoning=f"matched {pid}")
                    for pid, version in candidates],
    )


def assigned(decision: PolicyDecision) -> tuple[str | None, int | None]:
    return decision.playbook_id, decision.playbook_version


def exception(amount: str | None = "42.50") -> dict[str, Any]:
    return {"domain": "payments", "type": "payment.failed", "amount": amount, "currency": "USD"}


def test_a_small_confident_low_severity_run_needs_no_approval(catalog: Catalog) -> None:
    decision = evaluate_policy("acme", triage_result(CARD), exception(), catalog)
    assert assigned(decision) == CARD
    card = catalog.playbook("payment-card-declined@1")
    assert card is not None and decision.playbook_name == card.name
    assert decision.requires_approval is False
    assert decision.approval_reasons == [] and decision.gate is None and decision.notes == []


@pytest.mark.parametrize(
    ("triage", "amount", "reason"),
    [
        (triage_result(CARD, severity="high"), "42.50", "severity high requires approval"),
        (triage_result(CARD, severity="critical"), "42.50", "severity critical requires approval"),
        (triage_result(CARD), "5000", "amount 5000 USD is at or over 5000"),
        (triage_result(CARD, confidence=0.59), "42.50", "triage confidence 0.59 is under 0.6"),
        (triage_result(CHARGEBACK), "42.50", "the playbook contains a risky step"),
    ],
    ids=["high-severity", "critical-severity", "amount", "low-confidence", "risky-playbook"],
)
def test_each_trigger_pauses_acme_on_its_own_gate(
    catalog: Catalog, triage: TriageResult, amount: str, reason: str
) -> None:
    decision = evaluate_policy("acme", triage, exception(amount), catalog)
    assert decision.requires_approval is True
    assert decision.approval_reasons == [reason]
    assert decision.gate == "ops_lead_approval"


def test_the_amount_threshold_is_the_tenants_own(catalog: Catalog) -> None:
    acme = evaluate_policy("acme", triage_result(CARD), exception("7500"), catalog)
    other = evaluate_policy("initech", triage_result(CARD), exception("7500"), catalog)
    assert acme.requires_approval is True  # acme: 5000
    assert other.requires_approval is False  # defaults: 10000
    big = evaluate_policy("initech", triage_result(CARD), exception("10000"), catalog)
    assert big.requires_approval is True and big.gate == "policy_approval"


def test_an_unknown_tenant_approves_every_playbook_by_default(catalog: Catalog) -> None:
    # A playbook in the library that acme has not approved (triage only suggests library playbooks).
    experimental = Playbook(id=EXPERIMENTAL[0], name="Experimental refund", version=EXPERIMENTAL[1],
                            steps=[{"id": "note", "name": "Note", "action": "add_comment", "params": {"text": "x"}}])
    library = replace(catalog, playbooks={**catalog.playbooks, "experimental-refund@1": experimental})
    decision = evaluate_policy("initech", triage_result(EXPERIMENTAL, CARD), exception(), library)
    assert assigned(decision) == EXPERIMENTAL
    assert decision.notes == []


def test_an_unapproved_suggestion_falls_back_to_the_best_approved_candidate(catalog: Catalog) -> None:
    triage = triage_result(EXPERIMENTAL, RETRY, CARD)
    decision = evaluate_policy("acme", triage, exception(), catalog)
    assert assigned(decision) == RETRY
    assert decision.reasoning == "matched payment-processor-retry"
    assert decision.notes == ["suggested experimental-refund v1 is not approved for tenant acme"]


def test_no_approved_candidate_means_a_human_decides(catalog: Catalog) -> None:
    strict = replace(catalog, policies=Policies(tenants={"acme": TenantPolicy(approved_playbooks=[])}))
    decision = evaluate_policy("acme", triage_result(CARD), exception(), strict)
    assert assigned(decision) == (None, None)
    assert decision.playbook_name is None
    assert decision.requires_approval is True
    assert decision.approval_reasons == ["no approved playbook matches; a human must decide"]
    assert decision.gate == "policy_approval"


def test_several_triggers_are_all_listed(catalog: Catalog) -> None:
    triage = triage_result(CHARGEBACK, severity="high", confidence=0.5)
    decision = evaluate_policy("acme", triage, exception("9000"), catalog)
    assert len(decision.approval_reasons) == 4
