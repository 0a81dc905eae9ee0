"""Playbook matching: every condition must hold; ranking is priority, newest version, id, whatever the input order."""

from __future__ import annotations

from decimal import Decimal
from itertools import permutations
from typing import Any

import pytest

from agents.facts import ExceptionFacts
from agents.matching import rank_playbooks, why_matches
from config.playbooks import MatchConditions, Playbook
from config.severity import Severity

STEP = {"id": "s", "name": "S", "action": "notify"}


def playbook(pid: str, *, version: int = 1, priority: int = 0, **match: Any) -> Playbook:
    return Playbook(id=pid, name=pid.title(), version=version, priority=priority, match=match, steps=[STEP])


def facts(**overrides: Any) -> ExceptionFacts:
    base: dict[str, Any] = {
        "domain": "payments", "exception_type": "payment.failed", "code": "card_declined",
        "amount": Decimal("250"), "currency": "USD", "sla_minutes_remaining": 120.0,
        "severity": Severity.LOW, "tags": frozenset({"customer_action"}),
    }
    return ExceptionFacts(**{**base, **overrides})


def test_ranking_is_priority_then_newest_version_then_id_for_every_input_order() -> None:
    books = [
        playbook("b-low", priority=10),
        playbook("a-old", priority=50, version=1),
        playbook("a-new", priority=50, version=3),
        playbook("z-tie", priority=50, version=3),
        playbook("c-top", priority=90),
    ]
    expected = ["c-top@1", "a-new@3", "z-tie@3", "a-old@1", "b-low@1"]
    for order in permutations(books):
        assert [m.key for m in rank_playbooks(order, facts())] == expected


def test_only_playbooks_whose_conditions_all_hold_are_returned() -> None:
    books = [
        playbook("right", domain="payments", exception_type="payment.*", policy_tags=["customer_action"]),
        playbook("wrong-domain", domain="orders"),
        playbook("wrong-type", exception_type="payment.chargeback"),
        playbook("missing-tag", domain="payments", policy_tags=["customer_action", "retryable"]),
        playbook("catch-all"),
    ]
    matches = rank_playbooks(books, facts())
    assert sorted(m.playbook_id for m in matches) == ["catch-all", "right"]
    right = next(m for m in matches if m.playbook_id == "right")
    assert "domain=payments" in right.reasoning and "payment.*" in right.reasoning


@pytest.mark.parametrize(
    ("conditions", "the_facts", "holds"),
    [
        ({"amount_gte": "250"}, {}, True),  # the lower bound is inclusive
        ({"amount_lt": "250"}, {}, False),  # the upper bound is exclusive
        ({"amount_gte": "100", "amount_lt": "1000"}, {}, True),
        ({"amount_gte": "0"}, {"amount": None}, False),  # no amount cannot satisfy an amount rule
        ({"severity_in": ["high", "critical"]}, {}, False),
        ({"severity_in": ["low"]}, {}, True),
        ({"sla_minutes_remaining_lt": 60}, {}, False),
        ({"sla_minutes_remaining_lt": 60}, {"sla_minutes_remaining": 59.9}, True),
        ({"sla_minutes_remaining_lt": 60}, {"sla_minutes_remaining": None}, False),
        ({"exception_type": "payment.*"}, {"exception_type": "payments.failed"}, False),
    ],
)
def test_each_condition(conditions: dict, the_facts: dict, holds: bool) -> None:
    result = why_matches(MatchConditions(**conditions), facts(**the_facts))
    assert (result is not None) is holds


def test_the_shipped_library_ranks_the_chargeback_playbook_first(catalog: Any) -> None:
    chargeback = facts(exception_type="payment.chargeback", severity=Severity.HIGH, tags=frozenset())
    assert [m.key for m in rank_playbooks(catalog.playbooks.values(), chargeback)] == [
        "payment-chargeback-review@1"
    ]
