"""What the bus needs of an event to route it."""

from __future__ import annotations

from typing import Protocol


class Envelope(Protocol):
    """A committed event as the bus sees it; the store's ``EventRecord`` is one."""

    @property
    def id(self) -> int: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
