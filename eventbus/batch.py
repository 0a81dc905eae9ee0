"""What a subscriber receives: one commit's events for its filter."""

from __future__ import annotations

from collections.abc import Sequence

from eventbus.envelope import Envelope


class Batch:
    """One commit's events for one filter, shared by every subscriber with that filter; a reader
    may keep what it derives from them in ``memo`` (a stream: the bytes it sends) for the others."""

    __slots__ = ("events", "memo")

    def __init__(self, events: Sequence[Envelope]) -> None:
        self.events = events
        self.memo: bytes | None = None
