"""Time and ids, injected so tests are deterministic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from domain.ids import IdFactory

__all__ = ["Clock", "IdFactory", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
