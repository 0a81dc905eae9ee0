"""The run's state as the store keeps it: a full state survives the store's JSON, a state written by
an older release (the untyped v1 dict) is upgraded when read, and one written by a newer release
is refused rather than misread."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.policies import DEFAULT_DECIDERS
from domain.run_state import (
    CURRENT_SCHEMA_VERSION,
    Approval,
    Decision,
    Escalation,
    Feedback,
    Pause,
    PlaybookCandidate,
    PolicyDecision,
    RunState,
    SlaMark,
    StepRecord,
    StepStatus,
    TriageResult,
    new_state,
    replaced,
)
from domain.state_codec import StateTooNew, state_from_builtins
from domain.upcasters import V1_DEFAULT_DECIDERS, split_playbook_key
from store.types import dumps_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "state_v1.json").read_text())
COMPLETED_V1 = MANIFEST["situations"]["4_completed"]["run_id"]
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def read_back(state: RunState) -> RunState:
    """What the store writes for ``state`` (its JSON serializer), read the way a run row is read."""
    return state_from_builtins(orjson.loads(dumps_json(state)))


def stored_v1_states() -> dict[str, dict[str, Any]]:
    """The JSON states of the runs 6fe876f's code stored, exactly as they are in the database."""
    with sqlite3.connect(FIXTURES / "state_v1.db") as db:
        return {run_id: json.loads(state) for run_id, state in db.execute("SELECT id, state FROM runs")}


def full_state() -> RunState:
    """A state with every part and every field of each part set."""
    at = T0 + timedelta(minutes=5)
    return new_state(
        requested_playbook="payment-processor-retry@2",
        triage=TriageResult(
            source="llm", rule_id="payment-other", domain="payments", exception_type="payment.failed",
            severity="high", confidence=0.81, sla_minutes_remaining=42.5, tags=["retryable"],
            reasons=["rule payment-other", "model: gateway outage"],
            suggested_playbook_id="payment-processor-retry", suggested_playbook_version=2,
            playbook_reasoning="retryable gateway error",
            candidates=[
                PlaybookCandidate(playbook_id="payment-processor-retry", playbook_version=2,
                                  reasoning="retryable gateway error"),
                PlaybookCandidate(playbook_id="payment-card-declined", playbook_version=1, reasoning="payments"),
            ],
            llm_error="first attempt timed out", llm_confidence=0.81, rules_confidence=0.55,
        ),
        policy=PolicyDecision(
            playbook_id="payment-processor-retry", playbook_version=2, playbook_name="Retry at the processor",
            reasoning="retryable gateway error", notes=["suggested by the model"], requires_approval=True,
            approval_reasons=["severity high requires approval"], gate="ops_lead_approval",
        ),
        pause=Pause(
            gate="ops_lead_approval", reason="severity high requires approval", requested_at=T0,
            expires_at=T0 + timedelta(hours=2), payload_schema={"type": "object", "required": ["reason"]},
            deciders=["role:ops_lead"], approvals_required=2, initiator_may_approve=True,
            approvals=[Approval(by="user:lee", reason="looks right", at=at)],
            on_expiry={"action": "reassign", "queue": "ops-escalations"}, step_id="refund",
            escalated=Escalation(at=at, queue="ops-escalations", from_deciders=["role:ops_lead"], waiting_since=at),
        ),
        steps={
            status.value: StepRecord(status=status, order=order, since=T0)
            for order, status in enumerate(StepStatus, start=1)
        } | {
            "refund": StepRecord(
                status=StepStatus.FAILED, order=9, since=T0, tool="processor_refund", input={"amount": "42.50"},
                outputs={"reference": "re_1"}, completed_at=at, completed_by="user:lee", duration_minutes=5.0,
                ai_confidence=0.7, ai_insights="the processor was down", event_seq=12, attempts=3,
                error="processor answered 503", failed_at=at, skipped_by="user:lee", note="retried by hand",
            ),
        },
        total_steps=9,
        pending_calls=["in_progress"],
        waiting_steps=["waiting_for_input", "waiting_for_signal"],
        awaiting_next_step=True,
        decisions=[Decision(gate="ops_lead_approval", decision="approve", by="system", reason="expired",
                            at=at, automatic=True)],
        human_interventions=2,
        last_actor="user:lee",
        feedback=Feedback(
            outcome="completed", duration_seconds=300.0, playbook_id="payment-processor-retry", playbook_version=2,
            total_steps=9, completed_steps=1, human_interventions=2, last_actor="user:lee", severity="critical",
            triage_confidence=0.81, approval_required=True,
        ),
        severity="critical",
        sla=SlaMark(level="breached", deadline=T0 + timedelta(hours=1), sweep_run_id="run_sweep",
                    at_risk_at=T0 + timedelta(minutes=30), breached_at=T0 + timedelta(hours=1)),
        error="step refund: processor answered 503",
        owner="queue:ops",
        exception_status="payment_hold",
        job="sla_sweep",
        summary={"swept": 3},
    )


def unset_fields(part: msgspec.Struct, path: str = "state") -> list[str]:
    """The fields of ``part`` and of the parts inside it left ``None`` or at their default."""
    unset = []
    for field in msgspec.structs.fields(part):
        value, name = getattr(part, field.name), f"{path}.{field.name}"
        default = field.default_factory() if field.default_factory is not msgspec.NODEFAULT else field.default
        if value is None or value == default:
            unset.append(name)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, item in [*items, ("", value)]:
            if isinstance(item, msgspec.Struct):
                unset += unset_fields(item, f"{name}.{key}".rstrip("."))
    return unset


def test_the_full_state_sets_every_field() -> None:
    """Guards the round-trip below: a field added to the model without a value here is not checked by it."""
    state = full_state()
    # The other steps are there for their statuses only.
    assert unset_fields(replaced(state, steps={"refund": state.steps["refund"]})) == []


def test_a_full_state_survives_the_stores_json() -> None:
    state = full_state()
    back = read_back(state)
    assert back == state
    assert isinstance(back.steps["refund"].status, StepStatus)
    assert back.pause is not None and back.pause.expires_at == T0 + timedelta(hours=2)
    assert back.pause.expires_at.tzinfo is not None


def test_schema_version_is_always_in_the_stored_json() -> None:
    """Regression: were ``schema_version`` a default, the encoder would leave it out, and the state would
    read back as version 1 and be upcast again, losing its playbook (v1 named it ``playbook``)."""
    for state in (new_state(), full_state()):
        assert orjson.loads(dumps_json(state))["schema_version"] == CURRENT_SCHEMA_VERSION
    assigned = new_state(policy=full_state().policy)
    back = read_back(assigned)
    assert back.policy is not None
    assert (back.policy.playbook_id, back.policy.playbook_version) == ("payment-processor-retry", 2)


def test_a_state_from_a_newer_release_is_refused() -> None:
    document = orjson.loads(dumps_json(full_state()))
    document["schema_version"] = CURRENT_SCHEMA_VERSION + 1
    with pytest.raises(StateTooNew):
        state_from_builtins(document)


def test_a_stored_v1_state_upcasts_with_the_playbook_split_and_fields_renamed() -> None:
    v1 = stored_v1_states()[COMPLETED_V1]
    assert "schema_version" not in v1
    assert v1["policy"]["playbook"] == v1["triage"]["suggested_playbook"] == "payment-card-declined@1"
    # 6fe876f's Resolution recorded a failed step with its time as ``at``; no stored run has one, so add it.
    v1["steps"]["refund"] = {"status": "failed", "order": 4, "error": "processor answered 503",
                             "at": "2026-11-24T09:00:00+00:00"}

    state = state_from_builtins(v1)

    assert state.schema_version == CURRENT_SCHEMA_VERSION
    assert state.triage is not None and state.policy is not None and state.feedback is not None
    assert (state.triage.suggested_playbook_id, state.triage.suggested_playbook_version) == (
        "payment-card-declined", 1)
    assert [(c.playbook_id, c.playbook_version, c.reasoning) for c in state.triage.candidates] == [
        ("payment-card-declined", 1, v1["triage"]["candidates"][0]["reasoning"])]
    assert state.triage.playbook_reasoning == v1["triage"]["candidates"][0]["reasoning"]
    assert (state.policy.playbook_id, state.policy.playbook_version) == ("payment-card-declined", 1)
    assert state.total_steps == v1["steps_total"] == 3
    assert state.steps["refund"].status == StepStatus.FAILED
    assert state.steps["refund"].failed_at == T0
    assert state.steps["log"].completed_at == T0 and state.steps["log"].status == StepStatus.COMPLETED
    feedback = v1["feedback"]
    assert (state.feedback.playbook_id, state.feedback.playbook_version) == ("payment-card-declined", 1)
    assert (state.feedback.total_steps, state.feedback.completed_steps) == (
        feedback["steps_total"], feedback["steps_completed"]) == (3, 3)
    assert state.feedback.outcome == feedback["outcome"] == "completed"


def test_a_v1_playbook_of_a_later_version_keeps_its_version() -> None:
    v1 = stored_v1_states()[COMPLETED_V1]
    v1["policy"]["playbook"] = v1["feedback"]["playbook"] = "payment-processor-retry@2"
    state = state_from_builtins(v1)
    assert state.policy is not None and state.feedback is not None
    assert (state.policy.playbook_id, state.policy.playbook_version) == ("payment-processor-retry", 2)
    assert (state.feedback.playbook_id, state.feedback.playbook_version) == ("payment-processor-retry", 2)
    assert state.playbook_key == "payment-processor-retry@2"


@pytest.mark.parametrize(("key", "split"), [
    ("x@2", ("x", 2)), ("payment-processor-retry@12", ("payment-processor-retry", 12)), ("x", ("x", None)),
    (None, (None, None)),
])
def test_a_v1_playbook_key_splits_into_id_and_version(key: str | None, split: tuple[str | None, int | None]) -> None:
    assert split_playbook_key(key) == split


@pytest.mark.parametrize("run_id", sorted(stored_v1_states()))
def test_every_stored_v1_state_loads_and_then_round_trips(run_id: str) -> None:
    state = state_from_builtins(stored_v1_states()[run_id])
    assert state.schema_version == CURRENT_SCHEMA_VERSION
    assert read_back(state) == state


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.sampled_from(list(StepStatus)), max_size=8))
def test_any_step_statuses_round_trip(statuses: dict[str, StepStatus]) -> None:
    steps = {sid: StepRecord(status=status, order=i) for i, (sid, status) in enumerate(statuses.items(), 1)}
    back = read_back(new_state(steps=steps, total_steps=len(steps)))
    assert back.steps == steps
    assert {sid: back.step_status(sid) for sid in statuses} == statuses
    assert all(type(record.status) is StepStatus for record in back.steps.values())


def test_a_v1_pause_that_recorded_no_deciders_gets_the_default_ones() -> None:
    """The first releases read a pause without ``deciders`` as the default deciders; so does
    the upgrade, with the same default as the config."""
    requested = datetime(2026, 11, 1, 9, tzinfo=UTC)
    v1 = {"pause": {"gate": "ops_lead_approval", "reason": "amount", "requested_at": requested.isoformat(),
                    "expires_at": (requested + timedelta(hours=4)).isoformat(), "payload_schema": {}}}
    state = state_from_builtins(v1)
    assert state.pause is not None and state.pause.deciders == list(DEFAULT_DECIDERS) == V1_DEFAULT_DECIDERS
