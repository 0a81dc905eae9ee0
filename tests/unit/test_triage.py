"""Triage on the shipped rules: first matching rule, amount and SLA escalation, fallback, suggestions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.triage import triage
from config.catalog import Catalog
from domain.run_state import TriageResult

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def exception(**overrides: Any) -> dict[str, Any]:
    body = {
        "source": "stripe", "source_id": "ch_1", "domain": "payments", "type": "payment.failed",
        "code": "card_declined", "amount": "42.50", "currency": "USD",
        "sla_deadline": (NOW + timedelta(hours=6)).isoformat(),
    }
    return {**body, **overrides}


def run_triage(catalog: Catalog, **overrides: Any) -> TriageResult:
    return triage(exception(**overrides), catalog.triage, catalog.playbooks.values(), NOW)


@pytest.mark.parametrize(
    ("overrides", "rule", "severity", "confidence"),
    [
        ({}, "payment-card-declined", "low", 0.92),
        ({"code": "processor_timeout"}, "payment-processor-error", "medium", 0.85),
        ({"code": "expired_card"}, "payment-other", "medium", 0.7),
        ({"type": "payment.chargeback", "code": None}, "payment-chargeback", "high", 0.9),
        ({"domain": "shipping", "type": "shipment.delayed"}, "shipping-delayed", "low", 0.9),
    ],
)
def test_the_first_rule_that_holds_classifies(
    catalog: Catalog, overrides: dict, rule: str, severity: str, confidence: float
) -> None:
    result = run_triage(catalog, **overrides)
    assert (result.rule_id, result.severity, result.confidence) == (rule, severity, confidence)
    assert result.source == "rules"


def test_a_card_decline_suggests_the_card_declined_playbook(catalog: Catalog) -> None:
    result = run_triage(catalog)
    assert result.tags == ["customer_action"]
    assert (result.suggested_playbook_id, result.suggested_playbook_version) == ("payment-card-declined", 1)
    best = result.candidates[0]
    assert (best.playbook_id, best.playbook_version) == ("payment-card-declined", 1)
    assert result.playbook_reasoning == best.reasoning
    assert ("payment-processor-retry", 2) not in [(c.playbook_id, c.playbook_version) for c in result.candidates]


@pytest.mark.parametrize(
    ("amount", "severity"),
    [("9999.99", "low"), ("10000", "medium"), ("99999", "medium"), ("100000", "high"), ("5000000", "high")],
)
def test_large_amounts_raise_severity_by_the_biggest_matching_step(
    catalog: Catalog, amount: str, severity: str
) -> None:
    assert run_triage(catalog, amount=amount).severity == severity


def test_an_amount_escalation_is_explained(catalog: Catalog) -> None:
    reasons = run_triage(catalog, amount="15000").reasons
    assert reasons[0] == "rule payment-card-declined"
    assert any("15000 USD" in r and "raised severity by 1" in r for r in reasons)


@pytest.mark.parametrize(
    ("minutes_left", "severity"),
    [(6 * 60, "low"), (60, "low"), (59, "medium"), (1, "medium"), (-5, "critical")],
)
def test_a_close_or_missed_sla_raises_severity(catalog: Catalog, minutes_left: int, severity: str) -> None:
    result = run_triage(catalog, sla_deadline=(NOW + timedelta(minutes=minutes_left)).isoformat())
    assert result.sla_minutes_remaining == minutes_left
    assert result.severity == severity


def test_amount_and_sla_escalations_add_up(catalog: Catalog) -> None:
    result = run_triage(catalog, amount="20000", sla_deadline=(NOW + timedelta(minutes=30)).isoformat())
    assert result.severity == "high"  # low, +1 for the amount, +1 for the SLA


def test_no_sla_deadline_means_no_sla_escalation(catalog: Catalog) -> None:
    result = run_triage(catalog, sla_deadline=None)
    assert (result.severity, result.sla_minutes_remaining) == ("low", None)


def test_an_unknown_exception_falls_back_with_low_confidence(catalog: Catalog) -> None:
    result = run_triage(catalog, domain="hr", type="payroll.late", code=None, amount=None)
    assert result.rule_id is None
    assert (result.severity, result.confidence) == ("medium", 0.3)
    assert "fallback" in result.reasons[0]
    assert result.suggested_playbook_id is None and result.suggested_playbook_version is None
    assert result.playbook_reasoning is None and result.candidates == []
