"""Schedules as one service, for the API and the runtime: the editor
(``pipeline.schedule_editor``) makes the changes people and ``config/schedules.yaml`` ask for,
the timer (``pipeline.schedule_timer``) fires what is due and follows each fire. Both work on
the same stored schedules, one change at a time per schedule (``pipeline.schedule_records``).
Among several processes on one database only the leader's timer fires
(``pipeline.schedule_leader``); every process serves the editor, whose changes the leader reads
from the store. A change that loses a race with another process's save is made again over it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from config.schedules import DeclaredSchedule, ScheduleSettings
from pipeline.clock import Clock
from pipeline.launcher import Launcher
from pipeline.schedule_alarm import uniform_jitter
from pipeline.schedule_editor import ScheduleEditor
from pipeline.schedule_leader import ScheduleLeader
from pipeline.schedule_records import ScheduleBook, settings_of, upcoming
from pipeline.schedule_timer import ScheduleTimer
from store.leader_lock import LeaderLock, SoleLeader
from store.records import RunRecord, ScheduleRecord
from store.schedules import ScheduleRepository
from store.writer import WriteConflict

T = TypeVar("T")
EDIT_TRIES = 3


class ScheduleService:
    """``alarm=False`` keeps the alarm off: schedules then fire only by hand, or on ``tick`` (as
    tests drive them). ``lock`` elects the leader among processes (by default this one leads)."""

    def __init__(
        self,
        repo: ScheduleRepository,
        launcher: Launcher,
        *,
        clock: Clock,
        declared: Sequence[DeclaredSchedule] = (),
        alarm: bool = True,
        jitter: Callable[[float], float] = uniform_jitter,
        lock: LeaderLock | None = None,
        retry_seconds: float = 3.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.declared = list(declared)
        self.repo, self.book = repo, ScheduleBook(repo, clock)
        self.timer = ScheduleTimer(self.book, launcher, alarm=alarm, jitter=jitter, poll_seconds=poll_seconds)
        self.editor = ScheduleEditor(self.book, launcher, self.timer)
        self.leader = ScheduleLeader(lock or SoleLeader(), self.timer, retry_seconds=retry_seconds,
                                     poll_seconds=poll_seconds)

    async def start(self) -> None:
        """Load the declared schedules; then, as the leader (at once, or when this process takes
        over), catch up on what came due while nobody fired, and set the alarm."""
        await self.editor.seed(self.declared)
        await self.timer.start()
        await self.leader.start()

    async def stop(self) -> None:
        await self.leader.stop()
        await self.timer.stop()

    @property
    def leading(self) -> bool:
        """Whether this process fires the schedules."""
        return self.leader.leading

    @staticmethod
    async def _retried(attempt: Callable[[], Awaitable[T]]) -> T:
        """An edit made again over the schedule as another process left it."""
        for _ in range(EDIT_TRIES - 1):
            try:
                return await attempt()
            except WriteConflict:
                continue
        return await attempt()

    async def get(self, tenant_id: str, schedule_id: str) -> ScheduleRecord:
        return await self.book.get(tenant_id, schedule_id)

    @staticmethod
    def settings_of(record: ScheduleRecord) -> ScheduleSettings:
        return settings_of(record)

    @staticmethod
    def upcoming(record: ScheduleRecord, count: int = 5) -> list[datetime]:
        return upcoming(record, count)

    def busy(self, tenant_id: str, schedule_id: str) -> int:
        return self.timer.busy(tenant_id, schedule_id)

    async def create(self, tenant_id: str, schedule_id: str, settings: ScheduleSettings,
                     actor: str) -> ScheduleRecord:
        return await self._retried(lambda: self.editor.create(tenant_id, schedule_id, settings, actor))

    async def update(self, tenant_id: str, schedule_id: str, changes: dict[str, Any], actor: str) -> ScheduleRecord:
        return await self._retried(lambda: self.editor.update(tenant_id, schedule_id, changes, actor))

    async def set_paused(self, tenant_id: str, schedule_id: str, paused: bool, actor: str,
                         reason: str | None = None) -> ScheduleRecord:
        return await self._retried(lambda: self.editor.set_paused(tenant_id, schedule_id, paused, actor, reason))

    async def delete(self, tenant_id: str, schedule_id: str, actor: str) -> None:
        await self._retried(lambda: self.editor.delete(tenant_id, schedule_id, actor))

    async def run_now(self, tenant_id: str, schedule_id: str, actor: str, request_id: str | None) -> RunRecord:
        return await self.editor.run_now(tenant_id, schedule_id, actor, request_id)

    async def backfill(self, tenant_id: str, schedule_id: str, start: datetime, end: datetime,
                       actor: str) -> list[datetime]:
        return await self._retried(lambda: self.editor.backfill(tenant_id, schedule_id, start, end, actor))

    async def tick(self) -> None:
        """Handle whatever is due on every schedule now, as the alarm would (on the leader; on
        another process, nothing)."""
        await self.timer.tick()

    async def drain(self) -> None:
        """Wait until every fire in flight (and any it left waiting) has finished."""
        await self.timer.drain()
