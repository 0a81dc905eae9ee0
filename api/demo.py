"""Demo data: a stream of realistic exceptions for the demo tenant, so a fresh install has
something to look at: card declines, processor errors, chargebacks, stuck orders, stock
mismatches, late parcels and reconciliation breaks, some of which pause for approval."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from aiohttp import web

from api.keys import CLOCK, PIPELINE

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


GENERATORS: list[Callable[[random.Random, datetime], dict[str, Any]]] = [
    _payment, _payment, _payment, _chargeback, _stuck_order, _inventory, _late_parcel, _late_parcel, _recon_break,
]


def sample_exception(rng: random.Random, now: datetime) -> dict[str, Any]:
    return rng.choice(GENERATORS)(rng, now)


def demo_feed(*, initial: int = 12, every_seconds: float = 4.0, seed: int | None = None):  # type: ignore[no-untyped-def]
    """A cleanup context that feeds the demo tenant: a first burst, then one every few seconds."""

    async def feed(app: web.Application) -> AsyncIterator[None]:
        rng = random.Random(seed)

        async def produce() -> None:
            count = 0
            while True:
                engine = app[PIPELINE]
                exception = sample_exception(rng, app[CLOCK]())
                try:
                    await engine.start_run(
                        DEMO_TENANT, "exception_pipeline", exception, actor="system", trigger_type="api"
                    )
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
