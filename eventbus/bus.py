"""The bus contract: what publishers and readers call, whatever carries the events (this process's
loop today; a PostgreSQL bridge between processes later). Events are published only after they
are committed, and the log stays the truth: a reader that loses its place goes back to the log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from eventbus.batch import Batch
from eventbus.envelope import Envelope
from eventbus.subscription_filter import SubscriptionFilter


@runtime_checkable
class Subscription(Protocol):
    """One subscriber's bounded inbox, read in publish order. When a publish would pass its bound
    it keeps what fits, sets ``overflowed`` and ends, so its reader falls back to the log.

    A backend implements ``next_batches`` and the wake-up controls; reading event by event
    (``next_batch``, ``async for``) is written here once, for backends that subclass this."""

    filter: SubscriptionFilter
    overflowed: bool

    async def next_batches(self, timeout: float | None = None) -> list[Batch] | None:
        """Every batch waiting, in publish order (waiting for one if there is none); ``[]`` when
        ``timeout`` passed or ``poke`` came first; ``None`` once the subscription ended (closed or
        overflowed) and everything it kept has been taken."""

    def hold(self) -> None:
        """Keep queueing without waking the reader until ``release``: a reader that paces its
        writes is then woken once per pace, not once per publish. Ending still wakes it."""

    def release(self) -> None:
        """Wake the reader if anything is queued, and from now on at each publish."""

    def poke(self) -> None:
        """Wake the reader now even with nothing queued (``next_batches`` answers ``[]``)."""

    def close(self) -> None:
        """Leave the bus; what is already queued can still be read. Closing twice is harmless."""

    async def next_batch(self, timeout: float | None = None) -> list[Envelope] | None:
        """As ``next_batches``, as one list of events."""
        batches = await self.next_batches(timeout)
        return None if batches is None else [e for batch in batches for e in batch.events]

    async def __aiter__(self) -> AsyncIterator[Envelope]:
        """Every event, until the subscription ends and has been read out."""
        while (events := await self.next_batch()) is not None:
            for event in events:
                yield event


@runtime_checkable
class EventBus(Protocol):
    """Hands committed events to the subscriptions that want them. The committer publishes each
    commit's events once, in commit order; every subscription receives them in that order."""

    @property
    def subscriber_count(self) -> int:
        """Subscriptions open on this bus (for ``/metrics``)."""

    def publish(self, events: Sequence[Envelope]) -> None:
        """Hand committed events to subscribers; never blocks, never waits for a slow one."""

    def subscribe(
        self,
        patterns: Sequence[str] = ("#",),
        *,
        tenant_id: str,
        run_id: str | None = None,
        maxsize: int = 1000,
    ) -> Subscription:
        """An inbox of at most ``maxsize`` events (a single publish reaching it empty is taken
        whole) for what ``SubscriptionFilter(tenant_id, patterns, run_id)`` wants."""

    async def drain(self) -> None:
        """Return once everything published so far is in the inboxes it will reach: tests wait
        for this rather than for time to pass."""
