"""Schedules and their history. Reads take the tenant first, except the scheduler's start-up
scan; a change is written only over the version it was made from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.records import ScheduleLogEntry, ScheduleRecord
from store.tables import schedule_log, schedules
from store.writer import WriteConflict


def _schedule(row: Any) -> ScheduleRecord:
    return ScheduleRecord(**{c.name: row._mapping[c.name] for c in schedules.columns})


def _entry(row: Any) -> ScheduleLogEntry:
    return ScheduleLogEntry(**{c.name: row._mapping[c.name] for c in schedule_log.columns})


class ScheduleRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant_id: str, schedule_id: str, *, deleted: bool = False) -> ScheduleRecord | None:
        query = select(schedules).where(schedules.c.tenant_id == tenant_id, schedules.c.id == schedule_id)
        if not deleted:
            query = query.where(schedules.c.deleted.is_(False))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _schedule(row) if row else None

    async def list_for(self, tenant_id: str) -> list[ScheduleRecord]:
        query = (
            select(schedules)
            .where(schedules.c.tenant_id == tenant_id, schedules.c.deleted.is_(False))
            .order_by(schedules.c.id)
        )
        async with self._engine.connect() as conn:
            return [_schedule(row) for row in await conn.execute(query)]

    async def every(self) -> list[ScheduleRecord]:
        """System-wide, deleted ones included: the scheduler's start-up scan."""
        async with self._engine.connect() as conn:
            return [_schedule(row) for row in await conn.execute(select(schedules))]

    async def versions(self) -> dict[tuple[str, str], int]:
        """Each schedule's version, deleted ones included: what the scheduler's leader polls to
        notice changes made by other processes (a small read, no settings)."""
        query = select(schedules.c.tenant_id, schedules.c.id, schedules.c.version)
        async with self._engine.connect() as conn:
            return {(row.tenant_id, row.id): row.version for row in await conn.execute(query)}

    async def save(
        self, record: ScheduleRecord, *, is_new: bool, log: Sequence[ScheduleLogEntry] = ()
    ) -> ScheduleRecord:
        """Insert ``record``, or write it over version ``record.version - 1``; its log entries go
        in the same transaction. Raises ``WriteConflict`` when the row moved on, or was inserted
        first by another process."""
        async with self._engine.begin() as conn:
            if is_new:
                try:
                    await conn.execute(insert(schedules).values(asdict(record)))
                except IntegrityError as exc:
                    raise WriteConflict(f"schedule {record.id} was created elsewhere") from exc
            else:
                values = {k: v for k, v in asdict(record).items() if k not in ("tenant_id", "id")}
                result = await conn.execute(
                    update(schedules)
                    .where(schedules.c.tenant_id == record.tenant_id, schedules.c.id == record.id,
                           schedules.c.version == record.version - 1)
                    .values(values)
                )
                if result.rowcount != 1:
                    raise WriteConflict(f"schedule {record.id} changed elsewhere")
            if log:
                await conn.execute(insert(schedule_log), [_log_row(e) for e in log])
        return record

    async def log(self, entries: Sequence[ScheduleLogEntry]) -> None:
        if entries:
            async with self._engine.begin() as conn:
                await conn.execute(insert(schedule_log), [_log_row(e) for e in entries])

    async def history(
        self, tenant_id: str, schedule_id: str, *, kinds: Sequence[str] = (), before_id: int | None = None,
        limit: int = 100,
    ) -> list[ScheduleLogEntry]:
        """Newest first; ``before_id`` pages."""
        query = select(schedule_log).where(
            schedule_log.c.tenant_id == tenant_id, schedule_log.c.schedule_id == schedule_id
        )
        if kinds:
            query = query.where(schedule_log.c.kind.in_(kinds))
        if before_id:
            query = query.where(schedule_log.c.id < before_id)
        query = query.order_by(schedule_log.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_entry(row) for row in await conn.execute(query)]


def _log_row(entry: ScheduleLogEntry) -> dict[str, Any]:
    row = asdict(entry)
    row.pop("id")
    return row
