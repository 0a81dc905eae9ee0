"""The facts about an exception that rules, guardrails and playbook conditions look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from config.severity import Severity


@dataclass(frozen=True)
class ExceptionFacts:
    domain: str
    exception_type: str
    code: str | None
    amount: Decimal | None
    currency: str | None
    sla_minutes_remaining: float | None
    severity: Severity = Severity.MEDIUM
    tags: frozenset[str] = field(default_factory=frozenset)


def minutes_until(deadline: str | None, now: datetime) -> float | None:
    if not deadline:
        return None
    return round((datetime.fromisoformat(deadline) - now).total_seconds() / 60, 1)


def facts_of(exception: dict[str, Any], now: datetime) -> ExceptionFacts:
    """Read an ingested exception (stored in its JSON form) into typed facts."""
    amount = exception.get("amount")
    return ExceptionFacts(
        domain=exception["domain"],
        exception_type=exception["type"],
        code=exception.get("code"),
        amount=Decimal(str(amount)) if amount is not None else None,
        currency=exception.get("currency"),
        sla_minutes_remaining=minutes_until(exception.get("sla_deadline"), now),
    )
