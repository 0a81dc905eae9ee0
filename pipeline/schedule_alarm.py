"""The alarm that wakes a schedule at its next time: APScheduler's ``AsyncIOScheduler`` with one
``DateTrigger`` job per schedule, replaced each time the schedule is armed. Its own job stores
are not used (they are synchronous and pickle jobs): the store is the schedule's memory, and
the alarm only says when to look at it again."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from pipeline.clock import Clock
from pipeline.schedule_records import settings_of
from store.records import ScheduleRecord

log = structlog.get_logger(__name__)
Wake = Callable[[str, str], Awaitable[None]]
"""Handles what is due on one schedule: ``(tenant_id, schedule_id)``."""
WAKE_RETRY = 30.0
"""Seconds before a failed wake is tried again."""
MAX_TIMER_SECONDS = 7 * 86400.0
"""The alarm rings at least this often; a wake with nothing due sets it again."""


def uniform_jitter(most: float) -> float:
    return random.uniform(0, most)


class ScheduleAlarm:
    """Calls ``wake`` at each armed schedule's next time, late by the schedule's jitter. Switched
    off (``ringing=False``) it never calls: the jitter is still drawn, for wakes made by hand."""

    def __init__(
        self, wake: Wake, *, clock: Clock, ringing: bool, jitter: Callable[[float], float] = uniform_jitter
    ) -> None:
        self._wake, self.clock, self._jitter = wake, clock, jitter
        self._scheduler = AsyncIOScheduler(timezone=UTC) if ringing else None
        self._delays: dict[tuple[str, str], tuple[datetime, timedelta]] = {}

    def start(self) -> None:
        if self._scheduler is not None:
            self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def clear(self) -> None:
        """Unset every alarm (this process no longer fires)."""
        if self._scheduler is not None:
            self._scheduler.remove_all_jobs()
        self._delays.clear()

    def arm(self, tenant_id: str, schedule_id: str, record: ScheduleRecord | None) -> None:
        """Set (or clear) the alarm for the schedule's next fire, delayed by its jitter."""
        if self._scheduler is None:
            return
        job_id = f"{tenant_id}/{schedule_id}"
        if record is None or record.paused or record.deleted or record.next_fire_at is None:
            if self._scheduler.get_job(job_id):
                self._scheduler.remove_job(job_id)
            return
        # The alarm runs on the real clock, the schedule on the service's (a test's may stand
        # still): ring after the schedule-clock delay, so a stopped clock cannot spin the alarm.
        # Capped: a wake with nothing due only arms again, and a time near the end of the calendar
        # plus its jitter would not fit in a datetime.
        due_in = (record.next_fire_at - self.clock() + self.delay(record)).total_seconds()
        self._ring_in(tenant_id, schedule_id, min(max(0.0, due_in), MAX_TIMER_SECONDS))

    def delay(self, record: ScheduleRecord) -> timedelta:
        """The jitter of the schedule's next fire: drawn once per fire time, so the alarm and a
        wake (or a ``tick``) agree on when it is due."""
        key = (record.tenant_id, record.id)
        most = settings_of(record).jitter_seconds
        if not most or record.next_fire_at is None:
            self._delays.pop(key, None)
            return timedelta(0)
        drawn = self._delays.get(key)
        if drawn is None or drawn[0] != record.next_fire_at:
            drawn = self._delays[key] = (record.next_fire_at, timedelta(seconds=self._jitter(most)))
        return drawn[1]

    def _ring_in(self, tenant_id: str, schedule_id: str, seconds: float) -> None:
        """The schedule's one alarm job, replaced: ring ``seconds`` from now (real time)."""
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._ring, trigger=DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=seconds)),
            args=[tenant_id, schedule_id], id=f"{tenant_id}/{schedule_id}", replace_existing=True,
            misfire_grace_time=None, coalesce=True,
        )

    async def _ring(self, tenant_id: str, schedule_id: str) -> None:
        """A wake that fails (the database away) is tried again shortly, so the schedule is not
        left without an alarm until the next restart."""
        try:
            await self._wake(tenant_id, schedule_id)
        except Exception:
            log.exception("a schedule's wake failed; trying again", schedule_id=schedule_id, retry_seconds=WAKE_RETRY)
            if self._scheduler is not None and self._scheduler.running:
                self._ring_in(tenant_id, schedule_id, WAKE_RETRY)
