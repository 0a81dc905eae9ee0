"""What a bus shared by several processes follows: the committed log itself, read in id order,
and a signal that says when there may be more to read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from eventbus.envelope import Envelope


class EventFeed(Protocol):
    """The log as ``FeedBus`` reads it. Ids must be issued in commit order, so that once a reader
    has seen id N, no event below N can still commit: reading ``id > last`` then never skips one."""

    async def newest(self) -> int:
        """The highest committed id (0 for an empty log)."""

    async def after(self, last: int, limit: int) -> Sequence[Envelope]:
        """Up to ``limit`` committed events with ids above ``last``, in id order."""

    async def watch(self, wake: Callable[[int | None], None]) -> None:
        """Until cancelled, call ``wake(id)`` when events up to ``id`` have committed, or
        ``wake(None)`` when something may have been missed (a reconnect). A lost call must only
        delay: the bus also reads on a timer."""
