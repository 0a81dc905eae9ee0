"""Property: the playbook chosen for an exception never depends on file or insertion order."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.facts import ExceptionFacts
from agents.matching import rank_playbooks
from config.playbooks import Playbook
from config.severity import Severity

FACTS = ExceptionFacts(
    domain="payments", exception_type="payment.failed", code="card_declined", amount=Decimal("120"),
    currency="USD", sla_minutes_remaining=45.0, severity=Severity.HIGH, tags=frozenset({"retryable"}),
)

conditions = st.fixed_dictionaries({}, optional={
    "domain": st.sampled_from(["payments", "orders"]),
    "exception_type": st.sampled_from(["payment.*", "payment.failed", "order.*", "*"]),
    "severity_in": st.lists(st.sampled_from(list(Severity)), min_size=1, unique=True),
    "sla_minutes_remaining_lt": st.sampled_from([30, 60, 120]),
    "amount_gte": st.sampled_from([0, 100, 500]),
    "policy_tags": st.sampled_from([["retryable"], ["dispute"]]),
})

playbooks = st.lists(
    st.builds(
        lambda pid, version, priority, match: Playbook(
            id=pid, name=pid, version=version, priority=priority, match=match,
            steps=[{"id": "note", "name": "Note", "action": "add_comment", "params": {"text": "x"}}],
        ),
        pid=st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon"]),
        version=st.integers(1, 3),
        priority=st.integers(0, 3),
        match=conditions,
    ),
    min_size=1, max_size=12,
    unique_by=lambda p: (p.id, p.version),
)


@settings(max_examples=300, deadline=None)
@given(library=playbooks, data=st.data())
def test_the_ranking_is_the_same_in_any_order(library, data):
    shuffled = data.draw(st.permutations(library))
    assert rank_playbooks(shuffled, FACTS) == rank_playbooks(library, FACTS)


@settings(max_examples=300, deadline=None)
@given(library=playbooks)
def test_the_winner_has_the_highest_priority_then_the_newest_version_then_the_first_id(library):
    ranked = rank_playbooks(library, FACTS)
    if not ranked:
        return
    best = ranked[0]
    for other in ranked[1:]:
        assert (-best.priority, -best.version, best.playbook_id) <= (-other.priority, -other.version, other.playbook_id)
    matching_ids = {(m.playbook_id, m.version) for m in ranked}
    assert all((p.id, p.version) in matching_ids for p in library if p.match == type(p.match)())
