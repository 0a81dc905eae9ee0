"""A bounded inbox on the event loop: the ``Subscription`` a bus fills with ``offer``.

A publisher never waits for it: past its bound it keeps what fits, is marked ``overflowed`` and
ends (its reader falls back to the log). Its reader takes everything waiting at once, so a stream
writes one chunk per wake-up however many commits arrived in between."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from eventbus.batch import Batch
from eventbus.bus import Subscription
from eventbus.subscription_filter import SubscriptionFilter


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Inbox(Subscription):
    def __init__(self, wanted: SubscriptionFilter, maxsize: int, on_end: Callable[[Inbox], None]) -> None:
        """``on_end`` is called once, when the inbox is closed or overflows: the bus lets it go."""
        if maxsize < 1:
            raise ValueError("a subscription must hold at least one event")
        self.filter = wanted
        self.key = (wanted.patterns, wanted.run_id)
        """Inboxes of one tenant with equal keys want the same events (a tuple: cheaper to hash)."""
        self.overflowed = False
        self._on_end = on_end
        self._pending: deque[Batch] = deque()
        self._size = 0
        self._maxsize = maxsize
        self._ended = False
        self._held = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, batch: Batch) -> None:
        """Queue ``batch`` (already selected for this filter). Past the bound, keep what fits,
        mark the inbox overflowed and end it; but a batch arriving at an empty inbox is taken
        whole, however large, so one big group commit never overflows a reader that keeps up
        (the batch is shared: its size costs every subscriber one reference)."""
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
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._pending and self._waiter is not None:
            _settle(self._waiter)

    def poke(self) -> None:
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
        if not self._pending and not self._ended:
            await self._wait(timeout)
        if self._pending:
            batches = list(self._pending)
            self._pending.clear()
            self._size = 0
            return batches
        return None if self._ended else []

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end(self)
            if self._waiter is not None:
                _settle(self._waiter)

    def close(self) -> None:
        self._end()
