"""Demo data: a stream of realistic exceptions for the demo tenant, so a fresh install has
something to look at across every domain the shipped playbooks cover: payments (declines,
processor errors, chargebacks, duplicate charges, fraud flags, returned payouts), orders, inventory,
shipping, finance, customer accounts and KYC, returns and procurement. Some complete on their own,
some pause for approval, and some wait for a person or a model to complete a step."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web

from api.keys import CLOCK, PIPELINE, SETTINGS
from pipeline.start_request import StartRequest

log = structlog.get_logger(__name__)
DEMO_TENANT = "acme"
CUSTOMERS = ["maria.lopez@example.com", "j.chen@example.net", "sam.okafor@example.org", "ines.dupont@example.fr"]


def _money(rng: random.Random, low: float, high: float) -> str:
    return str(Decimal(str(round(rng.uniform(low, high), 2))))


def _payment(rng: random.Random, now: datetime) -> dict[str, Any]:
    code = rng.choice(["card_declined", "insufficient_funds", "processor_timeout", "gateway_error"])
    return {
        "source": "stripe", "source_id": f"ch_{rng.getrandbits(48):012x}", "domain": "payments",
        "type": "payment.failed", "code": code, "amount": _money(rng, 12, 900), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([2, 4, 24]))).isoformat(),
        "context": {"customer_email": rng.choice(CUSTOMERS), "order_id": f"SO-{rng.randint(100000, 999999)}"},
    }


def _chargeback(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "adyen", "source_id": f"dsp_{rng.getrandbits(40):010x}", "domain": "payments",
        "type": "payment.chargeback", "code": rng.choice(["fraudulent", "product_not_received"]),
        "amount": _money(rng, 40, 2400), "currency": "EUR",
        "sla_deadline": (now + timedelta(days=7)).isoformat(),
        "context": {"merchant_account": "AcmeEU", "reason_code": "10.4"},
    }


def _stuck_order(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "shopify", "source_id": f"#{rng.randint(10000, 99999)}", "domain": "orders",
        "type": "order.stuck", "code": rng.choice(["no_pick_24h", "awaiting_allocation"]),
        "amount": _money(rng, 30, 14000), "currency": "USD",
        "sla_deadline": (now + timedelta(minutes=rng.choice([45, 180, 600]))).isoformat(),
        "context": {"warehouse": rng.choice(["RNO1", "ATL2"]), "customer_email": rng.choice(CUSTOMERS)},
    }


def _inventory(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "wms", "source_id": f"cc-{rng.randint(1000, 9999)}", "domain": "inventory",
        "type": "inventory.mismatch", "code": "count_variance",
        "sla_deadline": (now + timedelta(hours=8)).isoformat(),
        "context": {"sku": f"SKU-{rng.randint(1000, 9999)}", "system_qty": 40, "counted_qty": rng.randint(20, 39)},
    }


def _late_parcel(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": rng.choice(["ups", "dhl"]), "source_id": f"1Z{rng.getrandbits(56):014X}",
        "domain": "shipping", "type": rng.choice(["shipment.delayed", "shipment.delayed", "shipment.lost"]),
        "code": "carrier_exception", "amount": _money(rng, 20, 600), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([1, 12, 48]))).isoformat(),
        "context": {"customer_email": rng.choice(CUSTOMERS)},
    }


def _recon_break(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "netsuite", "source_id": f"batch-{now:%Y%m%d}-{rng.randint(1, 40)}", "domain": "finance",
        "type": "reconciliation.break", "code": "amount_mismatch", "amount": _money(rng, 3, 25000),
        "currency": "USD", "sla_deadline": (now + timedelta(days=2)).isoformat(),
        "context": {"bank": "JPM", "statement_line": rng.randint(1, 900)},
    }


def _duplicate_charge(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "stripe", "source_id": f"ch_{rng.getrandbits(48):012x}", "domain": "payments",
        "type": "payment.duplicate_charge", "code": "double_capture", "amount": _money(rng, 15, 400),
        "currency": "USD", "sla_deadline": (now + timedelta(hours=24)).isoformat(),
        "context": {
            "customer_email": rng.choice(CUSTOMERS), "order_id": f"SO-{rng.randint(100000, 999999)}",
            "original_charge_id": f"ch_{rng.getrandbits(48):012x}",
        },
    }


def _fraud_flag(rng: random.Random, now: datetime) -> dict[str, Any]:
    code, signals = rng.choice([
        ("velocity", "5 cards tried in 10 minutes from one device"),
        ("geo_mismatch", "billing country FR, shipping country NG, IP in RU"),
        ("disposable_email", "first order, disposable email domain, express shipping"),
    ])
    return {
        "source": "sift", "source_id": f"sift-{rng.getrandbits(32):08x}", "domain": "payments",
        "type": "payment.fraud_suspected", "code": code, "amount": _money(rng, 80, 3000), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([2, 6]))).isoformat(),
        "context": {"customer_email": rng.choice(CUSTOMERS), "order_id": f"SO-{rng.randint(100000, 999999)}",
                    "signals": signals},
    }


def _payout_return(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "adyen", "source_id": f"po_{rng.getrandbits(40):010x}", "domain": "payments",
        "type": "payment.payout_failed", "code": rng.choice(["account_closed", "invalid_iban", "name_mismatch"]),
        "amount": _money(rng, 200, 4800), "currency": "EUR",
        "sla_deadline": (now + timedelta(days=3)).isoformat(),
        "context": {"seller_id": f"S-{rng.randint(1000, 9999)}", "payee_email": "payouts@seller.example"},
    }


def _order_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    kind = rng.choice(["order.address_invalid", "order.backordered", "order.duplicate"])
    codes: dict[str, tuple[str, dict[str, Any]]] = {
        "order.address_invalid": ("address_not_found", {}),
        "order.backordered": ("allocation_short", {"short_lines": rng.randint(1, 3)}),
        "order.duplicate": ("same_cart_within_5m", {"original_order_id": f"#{rng.randint(10000, 99999)}"}),
    }
    code, context = codes[kind]
    return {
        "source": "shopify", "source_id": f"#{rng.randint(10000, 99999)}", "domain": "orders",
        "type": kind, "code": code, "amount": _money(rng, 25, 900), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([4, 12, 24]))).isoformat(),
        "context": {"customer_email": rng.choice(CUSTOMERS), "warehouse": rng.choice(["RNO1", "ATL2"]), **context},
    }


def _stock_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    kind = rng.choice(["inventory.negative_on_hand", "inventory.damaged", "inventory.shrinkage"])
    sku = f"SKU-{rng.randint(1000, 9999)}"
    location = f"{rng.choice('ABCD')}-{rng.randint(1, 40):02d}-{rng.randint(1, 6)}"
    body: dict[str, Any] = {
        "source": "wms", "source_id": f"inv-{rng.randint(10000, 99999)}", "domain": "inventory", "type": kind,
        "sla_deadline": (now + timedelta(hours=rng.choice([8, 24]))).isoformat(),
        "context": {"sku": sku, "location": location, "warehouse": rng.choice(["RNO1", "ATL2"])},
    }
    if kind == "inventory.negative_on_hand":
        body.update(code="negative_qty")
        body["context"]["on_hand"] = -rng.randint(1, 12)
    elif kind == "inventory.damaged":
        body.update(code=rng.choice(["forklift_damage", "water_damage", "crushed_on_receipt"]),
                    amount=_money(rng, 40, 2500), currency="USD")
    else:
        body.update(code="unexplained_loss", amount=_money(rng, 300, 7000), currency="USD")
        body["context"]["units_missing"] = rng.randint(6, 60)
    return body


def _parcel_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    kind = rng.choice(["shipment.damaged", "shipment.customs_hold"])
    context: dict[str, Any] = {"customer_email": rng.choice(CUSTOMERS)}
    if kind == "shipment.customs_hold":
        code = rng.choice(["missing_commercial_invoice", "duties_unpaid", "hs_code_query"])
        context["destination_country"] = rng.choice(["GB", "CA", "CH", "NO"])
    else:
        code = rng.choice(["customer_reported_damage", "carrier_damage_scan"])
    return {
        "source": rng.choice(["ups", "dhl", "fedex"]), "source_id": f"1Z{rng.getrandbits(56):014X}",
        "domain": "shipping", "type": kind, "code": code, "amount": _money(rng, 20, 900), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([12, 48]))).isoformat(), "context": context,
    }


def _finance_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    kind = rng.choice(["reconciliation.unmatched_deposit", "reconciliation.settlement_short", "ledger.posting_failed"])
    if kind == "reconciliation.unmatched_deposit":
        source, code = "jpm-bai2", "no_matching_invoice"
        context: dict[str, Any] = {"payer": rng.choice(["Globex Ltd", "Initech GmbH", "Umbrella Corp"]),
                                   "remittance_ref": f"INV {rng.randint(20000, 29999)}/{rng.randint(1, 9)}"}
    elif kind == "reconciliation.settlement_short":
        source, code = rng.choice(["stripe", "adyen"]), "settlement_below_captures"
        context = {"settlement_date": f"{now:%Y-%m-%d}"}
    else:
        source, code = "netsuite", rng.choice(["period_closed", "inactive_account", "missing_cost_center"])
        context = {"period": f"{now:%Y-%m}", "gl_account": str(rng.choice([4000, 4010, 5100, 6200]))}
    return {
        "source": source, "source_id": f"fin-{now:%Y%m%d}-{rng.randint(1, 400)}", "domain": "finance",
        "type": kind, "code": code, "amount": _money(rng, 50, 9000), "currency": "USD",
        "sla_deadline": (now + timedelta(days=2)).isoformat(), "context": context,
    }


def _customer_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    kind = rng.choice(["kyc.document_mismatch", "kyc.reverification_due", "kyc.sanctions_hit",
                       "account.takeover_suspected"])
    context: dict[str, Any] = {
        "customer_email": rng.choice(CUSTOMERS), "customer_id": f"C-{rng.randint(100000, 999999)}",
    }
    if kind == "kyc.document_mismatch":
        source, code = "onfido", rng.choice(["name_mismatch", "dob_mismatch", "address_mismatch"])
        context["document_type"] = rng.choice(["passport", "driving_licence", "national_id"])
    elif kind == "kyc.reverification_due":
        source, code = "onfido", rng.choice(["document_expired", "periodic_review"])
    elif kind == "kyc.sanctions_hit":
        source, code = "complyadvantage", "list_match"
        context.update(list_name=rng.choice(["OFAC SDN", "EU consolidated", "UK HMT"]),
                       match_score=round(rng.uniform(0.8, 0.99), 2))
    else:
        source, code = "auth0", rng.choice(["new_device_new_country", "password_then_address_change"])
        context["ip_country"] = rng.choice(["BR", "VN", "RO"])
    return {
        "source": source,
        "source_id": f"cus-{rng.getrandbits(32):08x}", "domain": "customer", "type": kind, "code": code,
        "sla_deadline": (now + timedelta(hours=rng.choice([4, 24, 72]))).isoformat(), "context": context,
    }


def _return_overdue(rng: random.Random, now: datetime) -> dict[str, Any]:
    return {
        "source": "loop-returns", "source_id": f"RMA-{rng.randint(100000, 999999)}", "domain": "returns",
        "type": "return.refund_overdue", "code": rng.choice(["grade_missing", "refund_failed"]),
        "amount": _money(rng, 15, 600), "currency": "USD",
        "sla_deadline": (now + timedelta(hours=rng.choice([6, 24]))).isoformat(),
        "context": {"customer_email": rng.choice(CUSTOMERS), "order_id": f"SO-{rng.randint(100000, 999999)}"},
    }


def _vendor_problem(rng: random.Random, now: datetime) -> dict[str, Any]:
    vendor = rng.choice(["V-1042 Northwind", "V-2210 Contoso", "V-3307 Fabrikam"])
    if rng.random() < 0.7:
        return {
            "source": "coupa", "source_id": f"INV-{rng.randint(100000, 999999)}", "domain": "procurement",
            "type": "invoice.three_way_mismatch", "code": rng.choice(["price_variance", "qty_not_received"]),
            "amount": _money(rng, 400, 12000), "currency": "USD",
            "sla_deadline": (now + timedelta(days=5)).isoformat(),
            "context": {"vendor_id": vendor, "po_number": f"PO-{rng.randint(40000, 49999)}",
                        "vendor_email": "ar@vendor.example"},
        }
    return {
        "source": "coupa", "source_id": f"VM-{rng.randint(1000, 9999)}", "domain": "procurement",
        "type": "vendor.bank_details_changed", "code": "bank_account_updated",
        "sla_deadline": (now + timedelta(days=1)).isoformat(),
        "context": {"vendor_id": vendor, "changed_by": rng.choice(["supplier_portal", "user:ap.clerk"])},
    }


GENERATORS: list[Callable[[random.Random, datetime], dict[str, Any]]] = [
    _payment, _payment, _payment, _chargeback, _duplicate_charge, _fraud_flag, _payout_return,
    _stuck_order, _order_problem, _order_problem, _inventory, _stock_problem,
    _late_parcel, _late_parcel, _parcel_problem, _recon_break, _finance_problem,
    _customer_problem, _customer_problem, _return_overdue, _vendor_problem,
]


def sample_exception(rng: random.Random, now: datetime) -> dict[str, Any]:
    return rng.choice(GENERATORS)(rng, now)


def demo_feed(
    *, initial: int = 12, every_seconds: float = 4.0, seed: int | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that feeds the demo tenant: a first burst, then one every few seconds."""

    async def feed(app: web.Application) -> AsyncIterator[None]:
        rng = random.Random(seed)
        _fill_inbox(app[SETTINGS].data_dir / "inbox" / DEMO_TENANT, rng, app[CLOCK]())

        async def produce() -> None:
            count = 0
            while True:
                engine = app[PIPELINE]
                exception = sample_exception(rng, app[CLOCK]())
                try:
                    await engine.start_run(StartRequest(
                        DEMO_TENANT, "exception_pipeline", exception, actor="system", trigger_type="api"
                    ))
                except Exception:
                    log.exception("demo feed could not start a run")
                count += 1
                await asyncio.sleep(0 if count < initial else every_seconds)

        task = asyncio.create_task(produce(), name="demo-feed")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return feed


def _fill_inbox(inbox: Path, rng: random.Random, now: datetime) -> None:
    """Give the demo's ``inbox`` schedule (an ``ingest`` of ``acme_inbox``) a file to read once."""
    inbox.mkdir(parents=True, exist_ok=True)
    sample = inbox / "demo.jsonl"
    if not sample.exists():
        lines = [orjson.dumps({**sample_exception(rng, now), "source_id": f"inbox-{i}"}).decode() for i in range(5)]
        sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
