"""The shipped playbook library: it loads cleanly, covers the operational domains, every playbook
is the first choice for a realistic exception, and human and AI steps carry contracts whose
outputs the automatic steps after them use."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.exception_input import ExceptionIn
from agents.policy import evaluate_policy
from agents.resolution import walk_playbook
from agents.triage import triage
from api.demo import sample_exception
from config.catalog import Catalog, load_catalog
from config.output_contract import OutputField, contract_problems
from config.playbooks import PLACEHOLDER, Playbook
from config.settings import SHIPPED_CONFIG_DIR
from domain.run_state import PolicyDecision, StepRecord, StepStatus, TriageResult, replaced

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
REQUIRED_DOMAINS = {"payments", "orders", "inventory", "shipping", "finance", "customer"}
# What each automatic action hands back (agents/actions.py), so later steps can name it.
AUTOMATIC_OUTPUTS = {
    "notify": {"channel", "target", "template", "message", "delivery_id"},
    "assign_owner": {"owner"},
    "set_status": {"status", "reason"},
    "add_comment": {"comment"},
}


@pytest.fixture(scope="module")
def library() -> Catalog:
    return load_catalog(SHIPPED_CONFIG_DIR)


def exception(domain: str, kind: str, code: str | None, amount: str | None = None, *,
              currency: str = "USD", sla_minutes: float = 6 * 60, **context: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "ops-test", "source_id": f"{kind}-1", "domain": domain, "type": kind, "code": code,
        "sla_deadline": (NOW + timedelta(minutes=sla_minutes)).isoformat(), "context": context,
    }
    if amount is not None:
        body.update(amount=amount, currency=currency)
    return ExceptionIn.model_validate(body).model_dump(mode="json")


EMAIL: dict[str, Any] = {"customer_email": "maria.lopez@example.com"}  # context: any JSON value

# One realistic exception per shipped playbook, and the playbook it must be matched to first.
# The context carries every field the playbook's automatic steps fill in.
SAMPLES: dict[str, dict[str, Any]] = {
    "payment-card-declined@1": exception("payments", "payment.failed", "card_declined", "42.50", **EMAIL),
    "payment-processor-retry@2": exception("payments", "payment.failed", "gateway_error", "310.00", **EMAIL),
    "payment-chargeback-review@1": exception(
        "payments", "payment.chargeback", "fraudulent", "240.00", currency="EUR", reason_code="10.4"),
    "payment-duplicate-charge-refund@1": exception(
        "payments", "payment.duplicate_charge", "double_capture", "89.99", original_charge_id="ch_0001", **EMAIL),
    "payment-fraud-review@1": exception(
        "payments", "payment.fraud_suspected", "velocity", "1200.00", order_id="SO-100231",
        signals="5 cards in 10 minutes", **EMAIL),
    "payment-payout-failed@1": exception(
        "payments", "payment.payout_failed", "account_closed", "2300.00", currency="EUR",
        payee_email="payouts@seller.example"),
    "order-stuck-fulfilment@1": exception("orders", "order.stuck", "no_pick_24h", "120.00", warehouse="RNO1"),
    "order-stuck-sla-at-risk@1": exception(
        "orders", "order.stuck", "no_pick_24h", "120.00", sla_minutes=30, warehouse="RNO1"),
    "order-address-invalid@1": exception("orders", "order.address_invalid", "address_not_found", "75.00", **EMAIL),
    "order-backorder-decision@1": exception(
        "orders", "order.backordered", "allocation_short", "310.00", short_lines=2, **EMAIL),
    "order-duplicate-hold@1": exception(
        "orders", "order.duplicate", "same_cart_within_5m", "64.00", original_order_id="#10442", **EMAIL),
    "inventory-mismatch-recount@1": exception(
        "inventory", "inventory.mismatch", "count_variance", sku="SKU-1001", system_qty=40, counted_qty=31),
    "inventory-negative-on-hand@1": exception(
        "inventory", "inventory.negative_on_hand", "negative_qty", sku="SKU-1002", location="A-03-2",
        warehouse="ATL2", on_hand=-4),
    "inventory-damaged-disposition@1": exception(
        "inventory", "inventory.damaged", "forklift_damage", "640.00", sku="SKU-1003", location="B-11-1"),
    "inventory-shrinkage-investigate@1": exception(
        "inventory", "inventory.shrinkage", "unexplained_loss", "2100.00", sku="SKU-1004", location="C-07-4",
        units_missing=18),
    "shipment-delay-notify@1": exception("shipping", "shipment.delayed", "carrier_exception", "55.00", **EMAIL),
    "shipment-lost-reship@1": exception("shipping", "shipment.lost", "carrier_exception", "45.00", **EMAIL),
    "shipment-lost-claim@1": exception("shipping", "shipment.lost", "carrier_exception", "420.00", **EMAIL),
    "shipment-damaged-claim@1": exception("shipping", "shipment.damaged", "carrier_damage_scan", "180.00", **EMAIL),
    "shipment-customs-hold@1": exception(
        "shipping", "shipment.customs_hold", "duties_unpaid", "260.00", destination_country="GB", **EMAIL),
    "reconciliation-break-investigate@1": exception(
        "finance", "reconciliation.break", "amount_mismatch", "812.40", bank="JPM", statement_line=311),
    "reconciliation-unmatched-deposit@1": exception(
        "finance", "reconciliation.unmatched_deposit", "no_matching_invoice", "4100.00",
        payer="Globex Ltd", remittance_ref="INV 20417/2"),
    "reconciliation-settlement-short@1": exception(
        "finance", "reconciliation.settlement_short", "settlement_below_captures", "318.22"),
    "ledger-posting-failed@1": exception(
        "finance", "ledger.posting_failed", "period_closed", "950.00", period="2026-10", gl_account="4010"),
    "kyc-document-mismatch@1": exception(
        "customer", "kyc.document_mismatch", "dob_mismatch", customer_id="C-100200", document_type="passport",
        **EMAIL),
    "kyc-sanctions-hit@1": exception(
        "customer", "kyc.sanctions_hit", "list_match", customer_id="C-100201", list_name="OFAC SDN",
        match_score=0.91),
    "kyc-reverification-due@1": exception("customer", "kyc.reverification_due", "document_expired", **EMAIL),
    "account-takeover-lockdown@1": exception(
        "customer", "account.takeover_suspected", "new_device_new_country", customer_id="C-100202",
        ip_country="RO", **EMAIL),
    "return-refund-overdue@1": exception("returns", "return.refund_overdue", "grade_missing", "129.00", **EMAIL),
    "vendor-invoice-mismatch@1": exception(
        "procurement", "invoice.three_way_mismatch", "price_variance", "3400.00", po_number="PO-40112",
        vendor_email="ar@vendor.example"),
    "vendor-bank-change-verify@1": exception(
        "procurement", "vendor.bank_details_changed", "bank_account_updated", vendor_id="V-1042",
        changed_by="supplier_portal"),
}


def run_triage(library: Catalog, body: dict[str, Any]) -> TriageResult:
    return triage(body, library.triage, library.playbooks.values(), NOW)


def library_key(playbook_id: str | None, version: int | None) -> str | None:
    """How the catalog names a playbook (``id@version``), from the id and version a run records apart."""
    return f"{playbook_id}@{version}" if playbook_id is not None else None


def assigned(decision: PolicyDecision) -> str | None:
    return library_key(decision.playbook_id, decision.playbook_version)


def value_for(spec: OutputField) -> Any:
    """A value that meets one field of an output contract, as a person or a model would send it."""
    if spec.enum is not None:
        return spec.enum[0]
    if spec.type == "number":
        low = spec.minimum if spec.minimum is not None else 0
        return (low + spec.maximum) / 2 if spec.maximum is not None else low + 25
    return {"string": "checked by ops", "boolean": True, "object": {}, "array": ["name"]}[spec.type]


def step_output_refs(playbook: Playbook) -> list[tuple[str, str, str]]:
    """Every ``{steps.<id>.outputs.<name>}`` in the playbook, as (step using it, id, name)."""
    refs = []
    for step in playbook.steps:
        for name in (n for text in _strings(step.params) for n in PLACEHOLDER.findall(text)):
            parts = name.split(".")
            if parts[0] == "steps":
                refs.append((step.id, parts[1], parts[3]))
    return refs


def test_every_shipped_file_loads_with_no_problems(library: Catalog) -> None:
    files = sorted((SHIPPED_CONFIG_DIR / "playbooks").glob("*.y*ml"))
    assert library.problems == []
    assert len(library.playbooks) == len(files)


def test_the_library_covers_the_operational_domains(library: Catalog) -> None:
    domains = {p.match.domain for p in library.playbooks.values()}
    assert len(library.playbooks) >= 24
    assert REQUIRED_DOMAINS <= domains and len(domains) >= 6
    assert None not in domains  # every playbook is scoped to a domain


def test_every_playbook_has_a_sample_and_every_sample_is_valid_input(library: Catalog) -> None:
    assert set(SAMPLES) == set(library.playbooks)
    for body in SAMPLES.values():
        ExceptionIn.model_validate(body)


@pytest.mark.parametrize("expected", sorted(SAMPLES))
def test_each_playbook_is_the_first_choice_for_its_exception(library: Catalog, expected: str) -> None:
    result = run_triage(library, SAMPLES[expected])
    assert result.rule_id is not None, "the exception must be classified by a rule, not the fallback"
    assert library_key(result.suggested_playbook_id, result.suggested_playbook_version) == expected, result.candidates
    ranked = [library.playbooks[f"{c.playbook_id}@{c.playbook_version}"] for c in result.candidates]
    if len(ranked) > 1:  # the winner never rests on the id tie-break
        assert ranked[0].priority > ranked[1].priority


@pytest.mark.parametrize("expected", sorted(SAMPLES))
def test_acme_approves_and_assigns_the_suggested_playbook(library: Catalog, expected: str) -> None:
    body = SAMPLES[expected]
    decision = evaluate_policy("acme", run_triage(library, body), body, library)
    assert assigned(decision) == expected and decision.notes == []


def test_a_small_card_decline_runs_without_approval_and_the_processor_retry_is_automatic(library: Catalog) -> None:
    body = SAMPLES["payment-card-declined@1"]
    decision = evaluate_policy("acme", run_triage(library, body), body, library)
    assert decision.requires_approval is False
    card = library.playbooks["payment-card-declined@1"]
    assert [s.type for s in card.steps] == ["auto"] * 3
    retry = library.playbooks["payment-processor-retry@2"]
    assert retry.match.policy_tags == ["retryable"] and all(s.type == "auto" for s in retry.steps)


def test_human_and_ai_steps_have_an_owner_and_a_contract(library: Catalog) -> None:
    with_people_or_models = 0
    for key, playbook in library.playbooks.items():
        special = [s for s in playbook.steps if s.type in ("human", "ai")]
        with_people_or_models += bool(special)
        for step in special:
            assert step.outputs, f"{key}: step {step.id} has no output contract"
            if step.type == "human":
                assert step.action == "human_task" and step.assignee, f"{key}: step {step.id} has no assignee"
            else:
                assert step.action == "ai_task"
    assert with_people_or_models >= 0.4 * len(library.playbooks)


def test_what_a_person_or_model_decides_is_used_by_the_steps_after_it(library: Catalog) -> None:
    for key, playbook in library.playbooks.items():
        used = {source for _, source, _ in step_output_refs(playbook)}
        for step in playbook.steps:
            if step.type in ("human", "ai"):
                assert step.id in used, f"{key}: nothing uses the outputs of {step.id}"


def test_every_step_output_placeholder_names_an_output_the_step_produces(library: Catalog) -> None:
    for key, playbook in library.playbooks.items():
        for user, source, name in step_output_refs(playbook):
            step = playbook.step(source)
            assert step is not None, f"{key}: {user} refers to unknown step {source}"
            produced = set(step.outputs) if step.outputs else AUTOMATIC_OUTPUTS.get(step.action, set())
            assert name in produced, f"{key}: {user} uses {source}.{name}, which {source} does not produce"


def test_no_playbook_calls_a_tool_yet_and_risky_steps_pause_when_they_fail(library: Catalog) -> None:
    for key, playbook in library.playbooks.items():
        assert all(s.action != "call_tool" for s in playbook.steps), key
        for step in playbook.steps:
            if step.risky:
                assert step.type == "auto" and step.on_failure == "pause", f"{key}: {step.id}"


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_each_playbook_walks_to_the_end_when_people_and_models_answer(library: Catalog, key: str) -> None:
    """Resolution runs every automatic step with its placeholders filled, stops at each human or AI
    step, and finishes once those are completed with outputs that meet their contracts."""
    playbook, body = library.playbooks[key], SAMPLES[key]
    result = run_triage(library, body)
    scope = {
        "exception": {**body, "id": "run_1"},
        "run": {"id": "run_1", "workflow_id": "exception_pipeline", "trigger_type": "api",
                "severity": result.severity, "sla_minutes_remaining": result.sla_minutes_remaining,
                "playbook_id": key},
    }
    progress: dict[str, StepRecord] = {}
    answered: list[str] = []
    for _ in range(len(playbook.steps) + 1):
        outcome = walk_playbook(playbook, scope, progress, NOW)
        assert outcome.failed_step is None, outcome.error
        for event, payload in outcome.events:
            if event == "playbook.step_completed":
                assert "no value for" not in payload["notes"], (payload["step_id"], payload["notes"])
        progress = outcome.progress
        if outcome.status == "resolved":
            break
        assert outcome.status == "waiting_for_input" and outcome.waiting_steps
        for step_id in outcome.waiting_steps:
            step = playbook.step(step_id)
            assert step is not None and step.type in ("human", "ai")
            outputs = {name: value_for(spec) for name, spec in step.outputs.items()}
            assert contract_problems(step.outputs, outputs) == []
            progress[step_id] = replaced(progress[step_id], status=StepStatus.COMPLETED, outputs=outputs)
            answered.append(step_id)
    assert outcome.status == "resolved"
    assert all(progress[s.id].status == StepStatus.COMPLETED for s in playbook.steps)
    assert sorted(answered) == sorted(s.id for s in playbook.steps if s.type in ("human", "ai"))


def test_the_demo_stream_reaches_every_domain_and_always_finds_an_approved_playbook(library: Catalog) -> None:
    rng, now = random.Random(11), NOW
    domains, playbooks = set(), set()
    for _ in range(600):
        body = ExceptionIn.model_validate(sample_exception(rng, now)).model_dump(mode="json")
        decision = evaluate_policy("acme", run_triage(library, body), body, library)
        assert assigned(decision) is not None, body
        domains.add(body["domain"])
        playbooks.add(assigned(decision))
    assert REQUIRED_DOMAINS <= domains
    assert len(playbooks) >= 24


def test_placeholders_are_written_the_way_the_resolver_reads_them(library: Catalog) -> None:
    """A brace that is not a placeholder would be sent verbatim to a customer or a queue."""
    for key, playbook in library.playbooks.items():
        for step in playbook.steps:
            for text in _strings(step.params):
                stripped = PLACEHOLDER.sub("", text)
                assert "{" not in stripped and "}" not in stripped, f"{key}: {step.id}: {text}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []
