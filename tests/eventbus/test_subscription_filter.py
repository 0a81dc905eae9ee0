"""The one filter deciding what a subscriber receives, used by the bus and by a stream's log reads."""

from __future__ import annotations

import pytest

from eventbus import SubscriptionFilter
from tests.eventbus.sample_events import Event

MIXED = [
    Event(1, "acme", "r1", "run.received"),
    Event(2, "globex", "r1", "run.received"),
    Event(3, "acme", "r2", "playbook.step.completed"),
    Event(4, "acme", "r1", "triage.completed"),
]


@pytest.mark.parametrize(
    ("wanted", "ids"),
    [
        (SubscriptionFilter("acme"), [1, 3, 4]),
        (SubscriptionFilter("globex"), [2]),
        (SubscriptionFilter("acme", ("run.*", "playbook.#")), [1, 3]),
        (SubscriptionFilter("acme", ("#.completed",), "r1"), [4]),
        (SubscriptionFilter("acme", ("#",), "r2"), [3]),
        (SubscriptionFilter("initech"), []),
    ],
)
def test_wants_and_select_agree_and_keep_order(wanted: SubscriptionFilter, ids: list[int]) -> None:
    assert [e.id for e in MIXED if wanted.wants(e)] == ids
    assert [e.id for e in wanted.select(MIXED)] == ids


def test_everything_of_one_tenant_is_selected_without_a_copy() -> None:
    tenant_events = [e for e in MIXED if e.tenant_id == "acme"]
    assert SubscriptionFilter("acme").select(tenant_events) is tenant_events


def test_a_filter_names_its_tenant_and_a_pattern() -> None:
    with pytest.raises(ValueError, match="tenant"):
        SubscriptionFilter("")
    with pytest.raises(ValueError, match="pattern"):
        SubscriptionFilter("acme", ())
