"""When a failed delivery is tried again, and when it is given up (dead-lettered).

Exponential backoff with jitter, so endpoints that failed together are not retried together:
the n-th retry waits between half and all of ``first * 2**(n-1)``, capped. An answer's
``Retry-After`` (429 or 503) is honoured, within the same cap. A delivery whose next try would
fall after its ``give_up_at`` (its creation, or its last redelivery, plus the retry window) is
dead instead."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    first_seconds: float = 5.0
    cap_seconds: float = 3600.0
    window_seconds: float = 24 * 3600.0
    rng: random.Random = random.Random()

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed try."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_seconds)
        ceiling = min(self.first_seconds * 2 ** max(attempts - 1, 0), self.cap_seconds)
        return ceiling / 2 + self.rng.random() * ceiling / 2

    def next_try(self, now: datetime, attempts: int, give_up_at: datetime, retry_after: float | None = None
                 ) -> datetime | None:
        """When to try again, or ``None``: past the window, the delivery is dead."""
        at = now + timedelta(seconds=self.delay(attempts, retry_after))
        return at if at <= give_up_at else None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header's wait: delta-seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None
