"""A bus for several processes on one database: local subscribers are served by an ``InProcessBus``,
but events reach it only by following the committed log (``EventFeed``) in id order.

Why not deliver our own commits directly and the others' from the log: the two would interleave
out of commit order, and an event would arrive twice or not at all depending on which path saw it
first. With one path, every process hands every committed event to its subscribers once, in
commit order. ``publish`` (the committer, right after its commit) only wakes the follower, so our
own events cost one extra read of latency; other processes' commits wake it through the feed's
``watch`` (PostgreSQL ``NOTIFY``), and a timer reads anyway, so a lost notification only delays."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from operator import attrgetter

import structlog

from eventbus.bus import EventBus, Subscription
from eventbus.envelope import Envelope
from eventbus.feed import EventFeed
from eventbus.inprocess import InProcessBus

log = structlog.get_logger(__name__)
_id = attrgetter("id")


class FeedBus(EventBus):
    def __init__(
        self, feed: EventFeed, *, poll_seconds: float = 1.0, page: int = 500, retry_seconds: float = 1.0
    ) -> None:
        self._feed = feed
        self._inner = InProcessBus()
        self._poll_seconds, self._page, self._retry_seconds = poll_seconds, page, retry_seconds
        self._last = 0
        """The highest id handed to the subscribers (or passed over while there were none)."""
        self._ends: deque[int] = deque()
        """The last id of each of our own commits not yet read: a read is split there, so a
        subscriber receives one of our commits as one batch, as from ``InProcessBus``."""
        self._published = 0
        self._hint = 0
        self._forced = False
        self._woken = asyncio.Event()
        self._subscribes = 0
        self._drains: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Follow from the newest committed event: a subscriber that wants history reads the log
        (as a stream does after ``Last-Event-ID``)."""
        self._last = await self._feed.newest()
        self._tasks = [
            asyncio.create_task(self._follow(), name="event-feed-follower"),
            asyncio.create_task(self._feed.watch(self._wake), name="event-feed-listener"),
        ]

    async def stop(self) -> None:
        """Cancel the follower and the listener, again until they end: on Python 3.11 a
        cancellation that arrives with the answer ``asyncio.wait_for`` waits for is dropped."""
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @property
    def subscriber_count(self) -> int:
        return self._inner.subscriber_count

    def publish(self, events: Sequence[Envelope]) -> None:
        """Our own commit (its events in id order): read it from the log now."""
        if events:
            self._ends.append(events[-1].id)
            self._published = max(self._published, events[-1].id)
            self._wake(events[-1].id)

    def subscribe(
        self,
        patterns: Sequence[str] = ("#",),
        *,
        tenant_id: str,
        run_id: str | None = None,
        maxsize: int = 1000,
    ) -> Subscription:
        self._subscribes += 1
        return self._inner.subscribe(patterns, tenant_id=tenant_id, run_id=run_id, maxsize=maxsize)

    async def drain(self) -> None:
        """Wait until everything published here has been read from the log and handed over."""
        if self._published <= self._last:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drains.append((self._published, done))
        await done

    def _wake(self, upto: int | None) -> None:
        if upto is None:
            self._forced = True
        else:
            self._hint = max(self._hint, upto)
        self._woken.set()

    async def _follow(self) -> None:
        while True:
            forced = await self._due()
            try:
                await self._catch_up(forced)
            except Exception as exc:  # the database is away: try again, the log keeps our place
                log.warning("reading the event log failed", error=str(exc))
                self._forced = True
                await asyncio.sleep(self._retry_seconds)

    async def _due(self) -> bool:
        """Wait for a reason to read: a commit past what was read, or (answering True) a wake
        that cannot say (a reconnected listener, a failed read) or the timer."""
        while True:
            if not self._woken.is_set():
                try:
                    async with asyncio.timeout(self._poll_seconds):
                        await self._woken.wait()
                except TimeoutError:
                    self._forced = True
            self._woken.clear()
            forced, hint, self._forced, self._hint = self._forced, self._hint, False, 0
            if forced or hint > self._last:
                return forced

    async def _catch_up(self, forced: bool) -> None:
        while True:
            if not self._inner.subscriber_count:  # nobody to hand events to: only move the place
                if not forced:  # to our newest commit, without a query: every id below it has committed
                    self._advance(self._published)
                    return
                subscribes = self._subscribes
                newest = await self._feed.newest()
                if subscribes == self._subscribes:  # nobody subscribed while we asked
                    self._advance(newest)
                    return
            events = await self._feed.after(self._last, self._page)
            if events:
                self._deliver(events)
            if len(events) < self._page:
                return

    def _deliver(self, events: Sequence[Envelope]) -> None:
        """Publish ``events`` in id order, one batch per commit of ours (others' commits, whose
        ends we do not know, go with the next batch: merging is safe, reordering is not)."""
        start, ends = 0, self._ends
        while ends and ends[0] <= events[-1].id:
            end = bisect_right(events, ends.popleft(), lo=start, key=_id)
            if end > start:
                self._inner.publish(events[start:end])
                start = end
        if start < len(events):
            self._inner.publish(events[start:])
        self._advance(events[-1].id)

    def _advance(self, last: int) -> None:
        self._last = max(self._last, last)
        while self._ends and self._ends[0] <= self._last:
            self._ends.popleft()
        if self._drains:
            waiting = []
            for target, done in self._drains:
                if target <= self._last:
                    if not done.done():
                        done.set_result(None)
                else:
                    waiting.append((target, done))
            self._drains = waiting
