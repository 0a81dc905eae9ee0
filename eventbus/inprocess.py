"""The in-process bus: fan-out to bounded per-subscriber inboxes on the event loop.

Subscribers are kept per tenant, and publishing selects a commit's events once per distinct
filter (not once per subscriber), then appends that shared ``Batch`` to each inbox without ever
waiting. An inbox that would pass its bound keeps what fits, is marked ``overflowed`` and leaves
the bus: its reader falls back to the log. Readers take everything waiting at once, so a stream
writes one chunk per wake-up however many commits arrived in between."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

from eventbus.bus import Envelope
from eventbus.topics import topic_matches


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Batch:
    """One commit's events for one filter, shared by every subscriber with that filter; a reader
    may keep what it derives from them in ``memo`` (a stream: the bytes it sends) for the others."""

    __slots__ = ("events", "memo")

    def __init__(self, events: Sequence[Envelope]) -> None:
        self.events = events
        self.memo: bytes | None = None


class QueueSubscription:
    def __init__(
        self, bus: InProcessBus, patterns: Sequence[str], tenant_id: str, run_id: str | None, maxsize: int
    ) -> None:
        if maxsize < 1:
            raise ValueError("a subscription must hold at least one event")
        self._bus = bus
        self.patterns = tuple(patterns)
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.key = (self.patterns, run_id)
        """Subscribers with the same key want the same events of their tenant."""
        self.overflowed = False
        self._every_topic = "#" in self.patterns
        self._pending: deque[Batch] = deque()
        self._size = 0
        self._ready: deque[Envelope] = deque()  # for get(): taken from _pending, not yet handed out
        self._maxsize = maxsize
        self._ended = False
        self._held = False
        self._waiter: asyncio.Future[None] | None = None

    def wants(self, event: Envelope) -> bool:
        if event.tenant_id != self.tenant_id:
            return False
        if self.run_id is not None and event.run_id != self.run_id:
            return False
        return self._every_topic or any(topic_matches(p, event.topic) for p in self.patterns)

    def select(self, events: Sequence[Envelope]) -> Sequence[Envelope]:
        """The wanted ones among ``events``, which are all of this subscriber's tenant."""
        if self.run_id is None and self._every_topic:
            return events
        return [e for e in events if self.wants(e)]

    def offer(self, batch: Batch) -> None:
        """Queue ``batch`` (already selected for this subscriber). Past the bound, keep what fits,
        mark the inbox overflowed and leave the bus; but a batch arriving at an empty inbox is
        taken whole, however large, so one big group commit never overflows a reader that keeps
        up (the batch is shared: its size costs every subscriber one reference)."""
        if self._ended:
            return
        room = self._maxsize - self._size
        if len(batch.events) > room and self._size:
            if room > 0:
                self._pending.append(Batch(batch.events[:room]))
                self._size += room
            self.overflowed = True
            self._end()
            return
        self._pending.append(batch)
        self._size += len(batch.events)
        if self._waiter is not None and not self._held:
            _settle(self._waiter)

    def hold(self) -> None:
        """Keep queueing without waking the reader until ``release``: a reader that paces its
        writes is then woken once per pace, not once per publish."""
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._pending and self._waiter is not None:
            _settle(self._waiter)

    def poke(self) -> None:
        """Wake the reader now even with nothing queued (``next_batch`` answers ``[]``)."""
        if self._waiter is not None:
            _settle(self._waiter)

    async def _wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def next_batches(self, timeout: float | None = None) -> list[Batch] | None:
        """Every batch waiting, in publish order (waiting for one if there is none); ``[]`` when
        ``timeout`` passed or ``poke`` came first; ``None`` once the subscription ended (closed or
        overflowed) and everything it kept has been taken."""
        if not self._pending and not self._ended:
            await self._wait(timeout)
        if self._pending:
            batches = list(self._pending)
            self._pending.clear()
            self._size = 0
            return batches
        return None if self._ended else []

    async def next_batch(self, timeout: float | None = None) -> list[Envelope] | None:
        """As ``next_batches``, as one list of events."""
        batches = await self.next_batches(timeout)
        return None if batches is None else [e for batch in batches for e in batch.events]

    async def get(self) -> Envelope | None:
        """The next event, or ``None`` once closed or overflowed and drained."""
        while not self._ready:
            events = await self.next_batch()
            if events is None:
                return None
            self._ready.extend(events)
        return self._ready.popleft()

    async def __aiter__(self) -> AsyncIterator[Envelope]:
        while (event := await self.get()) is not None:
            yield event

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._bus._discard(self)
            if self._waiter is not None:
                _settle(self._waiter)

    def close(self) -> None:
        """Leave the bus; what is already queued can still be read. Closing twice is harmless."""
        self._end()


class InProcessBus:
    def __init__(self) -> None:
        self._by_tenant: dict[str, set[QueueSubscription]] = {}

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
            for subscriber in list(self._by_tenant.get(tenant_id, ())):
                key = subscriber.key
                if key in shared:
                    batch = shared[key]
                else:
                    selected = subscriber.select(tenant_events)
                    batch = shared[key] = Batch(selected) if selected else None
                if batch is not None:
                    subscriber.offer(batch)

    def subscribe(
        self,
        patterns: Sequence[str] = ("#",),
        *,
        tenant_id: str,
        run_id: str | None = None,
        maxsize: int = 1000,
    ) -> QueueSubscription:
        """A bounded inbox for one tenant's events: the tenant is required, so no subscriber can
        see every tenant by leaving it out."""
        if not tenant_id:
            raise ValueError("a subscription needs the tenant whose events it receives")
        subscription = QueueSubscription(self, patterns, tenant_id, run_id, maxsize)
        self._by_tenant.setdefault(tenant_id, set()).add(subscription)
        return subscription

    def _discard(self, subscription: QueueSubscription) -> None:
        subscribers = self._by_tenant.get(subscription.tenant_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_tenant[subscription.tenant_id]
