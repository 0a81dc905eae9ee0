"""Events as the bus sees them (``Envelope``), without a database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    id: int
    tenant_id: str
    run_id: str
    topic: str


def events(n: int, topic: str = "run.received", tenant: str = "acme", run: str = "r1") -> list[Event]:
    return [Event(i, tenant, run, topic) for i in range(1, n + 1)]
