"""The bus protocol. Events are published after they are committed; the log stays the truth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol


class Envelope(Protocol):
    """What the bus needs to route an event; the store's ``EventRecord`` is one."""

    @property
    def id(self) -> int: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def topic(self) -> str: ...


class Subscription(Protocol):
    """A bounded inbox. When it overflows it stops filling and says so: read the log instead."""

    overflowed: bool

    def __aiter__(self) -> AsyncIterator[Envelope]: ...
    async def next_batch(self, timeout: float | None = None) -> list[Envelope] | None: ...
    def hold(self) -> None: ...
    def release(self) -> None: ...
    def poke(self) -> None: ...
    def close(self) -> None: ...


class EventBus(Protocol):
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
        """One tenant's events (required: there is no all-tenants subscription)."""
