"""The one retry loop for writes that lose a race: read the run again, redo the change on the run
as it now is (so its checks see the current state), and try the write again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from domain.errors import RunChanged
from store.writer import WriteConflict

T = TypeVar("T")
TRIES = 3


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], run_id: str, tries: int = TRIES) -> T:
    """``attempt()`` until it commits; ``RunChanged`` if the run kept changing under it."""
    for _ in range(tries):
        try:
            return await attempt()
        except WriteConflict:
            continue
    raise RunChanged(f"run {run_id} kept changing; try again")
