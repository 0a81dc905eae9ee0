"""The in-process bus: fan-out on the event loop to bounded per-subscriber inboxes.

Subscribers are kept per tenant, and publishing selects a commit's events once per distinct
filter (not once per subscriber), then offers that shared ``Batch`` to each inbox, which never
waits. Everything happens inside ``publish``, so nothing is ever in flight."""

from __future__ import annotations

from collections.abc import Sequence

from eventbus.batch import Batch
from eventbus.bus import EventBus
from eventbus.envelope import Envelope
from eventbus.inbox import Inbox
from eventbus.subscription_filter import SubscriptionFilter


class InProcessBus(EventBus):
    def __init__(self) -> None:
        self._by_tenant: dict[str, set[Inbox]] = {}

    @property
    def subscriber_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._by_tenant.values())

    def publish(self, events: Sequence[Envelope]) -> None:
        if not self._by_tenant or not events:
            return
        by_tenant: dict[str, list[Envelope]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant_id, []).append(event)
        for tenant_id, tenant_events in by_tenant.items():
            shared: dict[tuple[tuple[str, ...], str | None], Batch | None] = {}
            for inbox in list(self._by_tenant.get(tenant_id, ())):
                key = inbox.key
                if key in shared:
                    batch = shared[key]
                else:
                    selected = inbox.filter.select(tenant_events)
                    batch = shared[key] = Batch(selected) if selected else None
                if batch is not None:
                    inbox.offer(batch)

    def subscribe(
        self,
        patterns: Sequence[str] = ("#",),
        *,
        tenant_id: str,
        run_id: str | None = None,
        maxsize: int = 1000,
    ) -> Inbox:
        inbox = Inbox(SubscriptionFilter(tenant_id, tuple(patterns), run_id), maxsize, self._discard)
        self._by_tenant.setdefault(tenant_id, set()).add(inbox)
        return inbox

    async def drain(self) -> None:
        """Nothing to wait for: ``publish`` has filled the inboxes before it returned."""

    def _discard(self, inbox: Inbox) -> None:
        subscribers = self._by_tenant.get(inbox.filter.tenant_id)
        if subscribers is not None:
            subscribers.discard(inbox)
            if not subscribers:
                del self._by_tenant[inbox.filter.tenant_id]
