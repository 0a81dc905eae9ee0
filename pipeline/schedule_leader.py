"""One scheduler leader among the processes on a database. Only the leader fires (alarm,
catch-up, backfills, following fires); every process serves the editor. A process that does not
lead tries for the lock every ``retry_seconds``; the leader checks it still holds it as often,
steps down when it does not, and every ``poll_seconds`` takes in what other processes changed
(``ScheduleTimer.sync``). With a lock nobody else can hold (SQLite) it leads from the start and
nothing runs in the background."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import structlog

from store.leader_lock import LeaderLock

log = structlog.get_logger(__name__)


class Leading(Protocol):
    """What the leader drives (``pipeline.schedule_timer.ScheduleTimer``)."""

    async def lead(self) -> None: ...

    async def resign(self) -> None: ...

    async def sync(self) -> None: ...


class ScheduleLeader:
    def __init__(self, lock: LeaderLock, timer: Leading, *, retry_seconds: float, poll_seconds: float) -> None:
        self.lock, self.timer = lock, timer
        self.retry_seconds, self.poll_seconds = retry_seconds, poll_seconds
        self.leading = False
        self._turn = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        """Set by ``stop``: the loop ends at its next turn even if a cancellation was lost (Python
        3.11's ``wait_for``, which the lock asks through, drops one that arrives with the answer)."""

    async def start(self) -> None:
        await self.campaign()
        if self.lock.contested:
            self._task = asyncio.create_task(self._run(), name="schedule-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._turn:
            await self._step_down()

    async def campaign(self) -> bool:
        """One round: the leader checks it still holds the lock (stepping down if not); any other
        process tries to take it, and on taking it starts the timer as at start-up (if that
        fails, it steps down and raises)."""
        async with self._turn:
            if self.leading:
                if not await self.lock.held():
                    log.warning("lost the scheduler's leader lock; no longer firing schedules")
                    await self._step_down()
            elif await self.lock.acquire():
                try:
                    await self.timer.lead()
                except BaseException:  # the store went away: let another process (or a later round) lead
                    await self.timer.resign()
                    await self.lock.release()
                    raise
                self.leading = True
                log.info("leading the scheduler")
            return self.leading

    async def _step_down(self) -> None:
        if self.leading:
            self.leading = False
            await self.timer.resign()
        await self.lock.release()

    async def _run(self) -> None:
        checked = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_seconds if self.leading else self.retry_seconds)
            if self._stopping:
                return
            try:
                if not self.leading or time.monotonic() - checked >= self.retry_seconds:
                    checked = time.monotonic()
                    await self.campaign()
                if self.leading:
                    await self.timer.sync()
            except Exception:
                log.exception("the scheduler's leader round failed; trying again")
