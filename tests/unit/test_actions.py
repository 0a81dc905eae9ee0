"""Each automatic action executor: what it records, what it changes on the run, what it refuses."""

from __future__ import annotations

import pytest

from agents.actions import EXECUTORS, Notification, add_comment, assign_owner, notify, set_status


def test_notify_queues_a_message_for_the_channel_and_needs_a_channel_and_something_to_say():
    result = notify({"channel": "slack", "target": "#oncall", "message": "card declined"})
    assert result.outputs == {"channel": "slack", "target": "#oncall", "message": "card declined"}
    assert result.run_changes == {}
    assert result.notification == Notification("slack", "#oncall", "card declined")
    templated = notify({"channel": "email", "to": "ann@example.com", "template": "refund_delayed"})
    assert templated.notification == Notification("email", "ann@example.com", "refund_delayed", "refund_delayed")
    with pytest.raises(ValueError, match="channel"):
        notify({"message": "to nowhere"})
    with pytest.raises(ValueError, match="'message' or a 'template'"):
        notify({"channel": "slack"})


def test_assign_owner_sets_the_owner_and_needs_one():
    result = assign_owner({"owner": "queue:payments-ops"})
    assert result.outputs == {"owner": "queue:payments-ops"} and result.run_changes == {"owner": "queue:payments-ops"}
    with pytest.raises(ValueError, match="owner"):
        assign_owner({})


def test_set_status_changes_the_exception_status_and_needs_one():
    result = set_status({"status": "payment_hold", "reason": "declined"})
    assert result.run_changes == {"exception_status": "payment_hold"}
    assert result.outputs == {"status": "payment_hold", "reason": "declined"}
    with pytest.raises(ValueError, match="status"):
        set_status({"reason": "no status"})


def test_add_comment_records_the_text_and_needs_some():
    assert add_comment({"text": "called the customer"}).outputs == {"comment": "called the customer"}
    with pytest.raises(ValueError, match="text"):
        add_comment({"text": ""})


def test_the_executors_cover_exactly_the_automatic_actions():
    from config.playbooks import AUTOMATIC_ACTIONS

    assert set(EXECUTORS) == AUTOMATIC_ACTIONS
