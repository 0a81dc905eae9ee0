"""The in-process bus: fan-out to bounded per-subscriber queues on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from eventbus.bus import Envelope
from eventbus.topics import topic_matches

_CLOSED = object()


class QueueSubscription:
    def __init__(
        self,
        bus: InProcessBus,
        patterns: Sequence[str],
        tenant_id: str | None,
        run_id: str | None,
        maxsize: int,
    ) -> None:
        self._bus = bus
        self.patterns = tuple(patterns)
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.overflowed = False
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize + 1)
        self._maxsize = maxsize
        self._closed = False

    def wants(self, event: Envelope) -> bool:
        if self.tenant_id is not None and event.tenant_id != self.tenant_id:
            return False
        if self.run_id is not None and event.run_id != self.run_id:
            return False
        return any(topic_matches(p, event.topic) for p in self.patterns)

    def offer(self, event: Envelope) -> None:
        if self._closed or self.overflowed:
            return
        if self._queue.qsize() >= self._maxsize:
            self.overflowed = True
            self._queue.put_nowait(_CLOSED)
            return
        self._queue.put_nowait(event)

    async def get(self) -> Envelope | None:
        """The next event, or ``None`` once closed or overflowed."""
        item = await self._queue.get()
        return None if item is _CLOSED else item  # type: ignore[return-value]

    async def __aiter__(self) -> AsyncIterator[Envelope]:
        while (event := await self.get()) is not None:
            yield event

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._subscribers.discard(self)
            if not self.overflowed:
                self._queue.put_nowait(_CLOSED)


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: set[QueueSubscription] = set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, events: Sequence[Envelope]) -> None:
        for subscriber in list(self._subscribers):
            for event in events:
                if subscriber.wants(event):
                    subscriber.offer(event)

    def subscribe(
        self,
        patterns: Sequence[str] = ("#",),
        *,
        tenant_id: str | None = None,
        run_id: str | None = None,
        maxsize: int = 1000,
    ) -> QueueSubscription:
        subscription = QueueSubscription(self, patterns, tenant_id, run_id, maxsize)
        self._subscribers.add(subscription)
        return subscription
