"""Which events a subscriber receives, decided in one place: by the bus when it fans out a commit,
and by a stream when it reads the log to catch up, so both send the same events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from eventbus.envelope import Envelope
from eventbus.topics import topic_matches

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """One tenant's events (the tenant is required: there is no all-tenants subscription), on a
    topic matching any of ``patterns``, of one run when ``run_id`` is given."""

    tenant_id: str
    patterns: tuple[str, ...] = ("#",)
    run_id: str | None = None

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("a subscription needs the tenant whose events it receives")
        if not self.patterns:
            raise ValueError("a subscription needs at least one topic pattern")

    def wants(self, event: Envelope) -> bool:
        return (
            event.tenant_id == self.tenant_id
            and (self.run_id is None or event.run_id == self.run_id)
            and ("#" in self.patterns or any(topic_matches(p, event.topic) for p in self.patterns))
        )

    def select(self, events: Sequence[E]) -> Sequence[E]:
        """The wanted ones among ``events``, in their order; ``events`` itself when all of them are
        (the common "everything of my tenant", which then costs no copy)."""
        if self.run_id is None and "#" in self.patterns and all(e.tenant_id == self.tenant_id for e in events):
            return events
        return [e for e in events if self.wants(e)]
