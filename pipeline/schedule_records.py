"""What the schedule editor and the schedule timer share: the stored schedules, changed one at a
time per schedule, with the history entries they write; and what a stored schedule says (its
settings, its calendar, its next times), read the same way by both."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from config.schedules import ScheduleSettings
from domain.errors import ScheduleNotFound
from pipeline.calendar import Calendar
from pipeline.clock import Clock
from store.records import RunRecord, ScheduleLogEntry, ScheduleRecord
from store.schedules import ScheduleRepository


class ScheduleBook:
    """The schedules' store, a lock per schedule (one change at a time, in this process) and the
    clock their history is written with."""

    def __init__(self, repo: ScheduleRepository, clock: Clock) -> None:
        self.repo, self.clock = repo, clock
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock(self, tenant_id: str, schedule_id: str) -> asyncio.Lock:
        return self._locks.setdefault((tenant_id, schedule_id), asyncio.Lock())

    async def get(self, tenant_id: str, schedule_id: str) -> ScheduleRecord:
        """The schedule, or ``ScheduleNotFound`` (also for a deleted one)."""
        record = await self.repo.get(tenant_id, schedule_id)
        if record is None:
            raise ScheduleNotFound(f"no schedule {schedule_id}")
        return record

    def entry(self, record: ScheduleRecord, kind: str, actor: str, **fields: Any) -> ScheduleLogEntry:
        """A line of the schedule's history, written now."""
        return ScheduleLogEntry(record.tenant_id, record.id, self.clock(), kind, actor, **fields)


def settings_of(record: ScheduleRecord) -> ScheduleSettings:
    return ScheduleSettings.model_validate({**record.settings, "workflow": record.workflow_id})


def calendar_of(record: ScheduleRecord) -> Calendar:
    return Calendar(settings_of(record).trigger, record.created_at)


def upcoming(record: ScheduleRecord, count: int = 5) -> list[datetime]:
    """The next fire times, or none while paused."""
    if record.paused or record.deleted or record.next_fire_at is None:
        return []
    return [record.next_fire_at, *calendar_of(record).upcoming(record.next_fire_at, count - 1)]


def edited(record: ScheduleRecord, now: datetime, actor: str, **changes: Any) -> ScheduleRecord:
    """``record`` with ``changes`` made by ``actor``, at the next version."""
    return replace(record, **changes, version=record.version + 1, updated_at=now, updated_by=actor)


def advanced(
    record: ScheduleRecord, next_fire_at: datetime | None, fired_for: datetime | None, run: RunRecord | None
) -> ScheduleRecord:
    """The record after a wake: its next time, and the fire it made."""
    return replace(
        record, next_fire_at=next_fire_at, version=record.version + 1,
        last_fire_at=fired_for or record.last_fire_at, last_run_id=run.id if run else record.last_run_id,
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
