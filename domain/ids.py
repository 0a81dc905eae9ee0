"""Ids that sort by creation time, made the same way in every layer (runs, deliveries, …)."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class IdFactory:
    """Ids that sort by creation time: 48 bits of milliseconds, then a per-process counter
    seeded at random, so ids made in one millisecond still sort in the order they were made."""

    def __init__(self, millis: Callable[[], int] | None = None) -> None:
        self._millis = millis or (lambda: time.time_ns() // 1_000_000)
        self._random = random.Random(os.urandom(16))  # ids are unique, not secret
        self._last_ms = -1
        self._counter = 0

    def __call__(self, prefix: str) -> str:
        ms = max(self._millis(), self._last_ms)
        if ms == self._last_ms:
            self._counter += 1
            if self._counter >= 1 << 30:  # a full millisecond: borrow the next one, keep the order
                ms, self._last_ms, self._counter = ms + 1, ms + 1, 0
        else:
            self._last_ms, self._counter = ms, self._random.getrandbits(30)
        value = (ms << 80) | (self._counter << 50) | self._random.getrandbits(50)
        return f"{prefix}_{_encode(value, 26)}"


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        out.append(_CROCKFORD[digit])
    return "".join(reversed(out))


def derived_id(prefix: str, *parts: str) -> str:
    """An id made from ``parts``, the same every time: what one (run, step) queues is written
    once however often the step's write is retried, because the id is the row's key."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return f"{prefix}_{_encode(int.from_bytes(digest[:17]), 26)}"
