"""Resolution walks a playbook: automatic steps in order, a stop at a human step, a failure on an action error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.resolution import walk_playbook
from config.playbooks import Playbook
from domain.run_state import StepRecord, StepStatus

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SCOPE = {
    "exception": {"id": "run_1", "code": "card_declined", "amount": 42.5, "currency": "USD",
                  "context": {"customer_email": "maria@example.com"}},
    "run": {"id": "run_1", "severity": "low"},
}


def playbook(*steps: dict[str, Any]) -> Playbook:
    return Playbook(id="demo", name="Demo", version=3, steps=list(steps))


ASSIGN = {"id": "assign", "name": "Assign", "action": "assign_owner", "params": {"owner": "queue:ops"}}
HOLD = {"id": "hold", "name": "Hold", "action": "set_status",
        "params": {"status": "payment_hold", "reason": "declined ({exception.code})"}}
TELL = {"id": "tell", "name": "Tell", "action": "notify",
        "params": {"channel": "email", "to": "{exception.context.customer_email}",
                   "message": "{exception.amount} {exception.currency} owned by {steps.assign.outputs.owner}"}}
ASK = {"id": "ask", "name": "Ask a human", "type": "human", "action": "human_task", "assignee": "queue:ops"}


def test_automatic_steps_run_in_order_with_placeholders_filled() -> None:
    outcome = walk_playbook(playbook(ASSIGN, HOLD, TELL), SCOPE, {}, NOW)
    assert outcome.status == "resolved" and outcome.error is None
    assert [t for t, _ in outcome.events] == [
        "playbook.started", *["playbook.step_completed"] * 3, "playbook.completed",
    ]
    completed = [p for t, p in outcome.events if t == "playbook.step_completed"]
    assert [(p["step_order"], p["step_id"]) for p in completed] == [(1, "assign"), (2, "hold"), (3, "tell")]
    assert completed[1]["outputs"] == {"status": "payment_hold", "reason": "declined (card_declined)"}
    assert completed[2]["outputs"]["target"] == "maria@example.com"
    assert completed[2]["outputs"]["message"] == "42.5 USD owned by queue:ops"
    assert outcome.run_changes == {"owner": "queue:ops", "exception_status": "payment_hold"}
    assert {sid: rec.status for sid, rec in outcome.progress.items()} == dict.fromkeys(
        ["assign", "hold", "tell"], StepStatus.COMPLETED
    )


def test_a_human_step_stops_the_walk_waiting_for_input() -> None:
    outcome = walk_playbook(playbook(ASSIGN, ASK, HOLD), SCOPE, {}, NOW)
    assert outcome.status == "waiting_for_input"
    assert outcome.waiting_steps == ["ask"]
    assert [t for t, _ in outcome.events] == ["playbook.started", "playbook.step_completed", "playbook.step_waiting"]
    waiting = outcome.events[-1][1]
    assert (waiting["step_id"], waiting["step_order"], waiting["assignee"]) == ("ask", 2, "queue:ops")
    assert "hold" not in outcome.progress
    assert outcome.progress["ask"].status == "waiting_for_input"


def test_a_walk_picks_up_after_the_completed_steps_without_restarting() -> None:
    first = walk_playbook(playbook(ASSIGN, ASK, HOLD), SCOPE, {}, NOW)
    progress = {**first.progress, "ask": StepRecord(status=StepStatus.COMPLETED, order=2, outputs={})}
    second = walk_playbook(playbook(ASSIGN, ASK, HOLD), SCOPE, progress, NOW)
    assert second.status == "resolved"
    assert [(t, p.get("step_id")) for t, p in second.events] == [
        ("playbook.step_completed", "hold"), ("playbook.completed", None),
    ]


def test_an_action_error_fails_the_walk_and_runs_nothing_after_it() -> None:
    broken = {"id": "broken", "name": "Broken", "action": "set_status", "params": {}}
    outcome = walk_playbook(playbook(ASSIGN, broken, TELL), SCOPE, {}, NOW)
    assert outcome.status == "failed"
    assert outcome.error == "step broken: set_status needs a 'status' parameter"
    assert [t for t, _ in outcome.events][-1] == "playbook.step_failed"
    assert outcome.progress["broken"].status == "failed"
    assert "tell" not in outcome.progress


def test_a_missing_value_is_noted_not_invented() -> None:
    lonely = {"id": "tell", "name": "Tell", "action": "notify",
              "params": {"channel": "sms", "to": "{exception.context.phone}", "message": "hello"}}
    outcome = walk_playbook(playbook(lonely), {"exception": {"context": {}}, "run": {"id": "run_1"}}, {}, NOW)
    [(_, step)] = [e for e in outcome.events if e[0] == "playbook.step_completed"]
    assert step["outputs"]["target"] is None
    assert "no value for exception.context.phone" in step["notes"]


def test_a_notify_step_queues_one_delivery_named_by_its_run_and_step() -> None:
    tell = {"id": "tell", "name": "Tell", "action": "notify", "params": {"channel": "slack", "message": "hi"}}
    first = walk_playbook(playbook(tell), {"run": {"id": "run_1"}}, {}, NOW)
    again = walk_playbook(playbook(tell), {"run": {"id": "run_1"}}, {}, NOW)
    other = walk_playbook(playbook(tell), {"run": {"id": "run_2"}}, {}, NOW)
    [(delivery_id, step_id, message)] = first.notifications
    assert step_id == "tell" and message.channel == "slack" and message.text == "hi"
    assert (first.progress["tell"].outputs or {})["delivery_id"] == delivery_id
    assert again.notifications[0][0] == delivery_id != other.notifications[0][0]
    [(_, step)] = [e for e in first.events if e[0] == "playbook.step_completed"]
    assert step["notes"] == f"delivery {delivery_id} queued on slack"


def test_a_step_that_depends_only_on_done_steps_runs_while_a_human_step_waits() -> None:
    parallel = {**HOLD, "depends_on": ["assign"]}
    outcome = walk_playbook(playbook(ASSIGN, ASK, parallel), SCOPE, {}, NOW)
    assert outcome.status == "waiting_for_input" and outcome.waiting_steps == ["ask"]
    assert outcome.progress["hold"].status == "completed"


def test_an_ai_step_waits_for_a_signal() -> None:
    think = {"id": "think", "name": "Summarise", "type": "ai", "action": "ai_task"}
    outcome = walk_playbook(playbook(ASSIGN, think), SCOPE, {}, NOW)
    assert outcome.progress["think"].status == "waiting_for_signal"


def test_a_failing_step_marked_pause_pauses_instead_of_failing() -> None:
    broken = {"id": "broken", "name": "Broken", "action": "set_status", "params": {}, "on_failure": "pause"}
    outcome = walk_playbook(playbook(ASSIGN, broken, TELL), SCOPE, {}, NOW)
    assert outcome.status == "paused" and outcome.failed_step == "broken"
    assert "tell" not in outcome.progress


def test_placeholders_can_name_steps_whose_ids_contain_hyphens() -> None:
    first = {"id": "first-step", "name": "First", "action": "assign_owner", "params": {"owner": "queue:ops"}}
    then = {"id": "then", "name": "Then", "action": "add_comment",
            "params": {"text": "owned by {steps.first-step.outputs.owner}"}}
    outcome = walk_playbook(playbook(first, then), SCOPE, {}, NOW)
    outputs = outcome.progress["then"].outputs
    assert outputs is not None and outputs["comment"] == "owned by queue:ops"


def test_a_stepwise_walk_takes_only_the_steps_it_is_granted() -> None:
    first = walk_playbook(playbook(ASSIGN, HOLD, TELL), SCOPE, {}, NOW, budget=1)
    assert first.status == "awaiting_next_step" and first.next_step == "hold"
    assert {sid: rec.status for sid, rec in first.progress.items()} == {
        "assign": StepStatus.COMPLETED, "hold": StepStatus.READY}
    held = walk_playbook(playbook(ASSIGN, HOLD, TELL), SCOPE, {}, NOW, budget=0)
    assert held.status == "awaiting_next_step" and held.next_step == "assign"
    assert {sid: rec.status for sid, rec in held.progress.items()} == {"assign": StepStatus.READY}
    again = walk_playbook(playbook(ASSIGN, HOLD, TELL), SCOPE, held.progress, NOW, budget=0)
    assert [topic for topic, _ in again.events] == []  # the playbook was started once, by the first walk
    rest = walk_playbook(playbook(ASSIGN, HOLD, TELL), SCOPE, first.progress, NOW, budget=2)
    assert rest.status == "resolved" and rest.next_step is None
    assert [(t, p.get("step_id")) for t, p in rest.events] == [
        ("playbook.step_completed", "hold"), ("playbook.step_completed", "tell"), ("playbook.completed", None),
    ]
