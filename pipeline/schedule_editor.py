"""What people (and ``config/schedules.yaml``) do to schedules: create, change, pause, resume,
delete, fire now, backfill. Each change is checked the way the API promises (a bad cron, an
unknown zone or workflow, a payload that does not fit: a 400 naming the field), written over
the version it was made from, and logged in the schedule's history with who made it. Fires
(now, or a backfill's) and the alarm after a change are the timer's: the editor reaches it only
through ``Firing``."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog
from pydantic import ValidationError

from config.schedules import DeclaredSchedule, ScheduleSettings
from domain.errors import ScheduleExists, ValidationFailed
from pipeline.calendar import Calendar
from pipeline.launcher import Launcher
from pipeline.schedule_records import ScheduleBook, calendar_of, edited, settings_of
from pipeline.validation import failed
from store.records import RunRecord, ScheduleLogEntry, ScheduleRecord
from store.writer import WriteConflict

log = structlog.get_logger(__name__)
MAX_BACKFILL = 1000
CONFIG_ACTOR = "config:schedules.yaml"


class Firing(Protocol):
    """What the editor needs from the timer (``pipeline.schedule_timer.ScheduleTimer``)."""

    def arm(self, tenant_id: str, schedule_id: str, record: ScheduleRecord | None) -> None: ...

    async def fire(
        self, record: ScheduleRecord, scheduled_for: datetime, *, actor: str | None = None, overlap: bool = True,
        request_id: str | None = None, by_hand: bool = False,
    ) -> tuple[list[ScheduleLogEntry], RunRecord | None]: ...

    def start_backfill(self, record: ScheduleRecord, times: list[datetime], actor: str, backfill_id: str) -> None: ...


class ScheduleEditor:
    """Changes schedules on behalf of people and the declarations file."""

    def __init__(self, book: ScheduleBook, launcher: Launcher, firing: Firing) -> None:
        self.book, self.launcher, self.firing = book, launcher, firing
        self.repo, self.clock = book.repo, book.clock

    def _checked(self, settings: ScheduleSettings, prefix: str, tenant_id: str) -> ScheduleSettings:
        """The workflow must exist, the payload fit it and the trigger fire at least once more;
        an interval gets a fixed start."""
        workflow = self.launcher.workflow(settings.workflow, field=f"{prefix}workflow")
        payload = self.launcher.check(workflow, settings.payload, f"{prefix}payload", tenant_id)
        trigger = settings.trigger
        if trigger.type == "interval" and trigger.start_at is None:
            trigger = trigger.model_copy(update={"start_at": self.clock()})
        if Calendar(trigger, self.clock()).next_after(self.clock()) is None:
            message = "this trigger never fires again (a date that does not exist, or a start past the calendar)"
            field = f"{prefix}trigger.expression" if trigger.type == "cron" else f"{prefix}trigger"
            raise ValidationFailed(message, [{"field": field, "message": message}])
        return settings.model_copy(update={"payload": payload, "trigger": trigger})

    @staticmethod
    def _next_after(record: ScheduleRecord, moment: datetime) -> datetime | None:
        return None if record.paused else calendar_of(record).next_after(moment)

    async def create(
        self, tenant_id: str, schedule_id: str, settings: ScheduleSettings, actor: str, *,
        origin: str = "api", declared_hash: str | None = None, prefix: str = "body.",
    ) -> ScheduleRecord:
        settings = self._checked(settings, prefix, tenant_id)
        now = self.clock()
        async with self.book.lock(tenant_id, schedule_id):
            old = await self.repo.get(tenant_id, schedule_id, deleted=True)
            if old is not None and not old.deleted:
                raise ScheduleExists(f"schedule {schedule_id} already exists", {"id": schedule_id})
            record = ScheduleRecord(
                tenant_id=tenant_id, id=schedule_id, workflow_id=settings.workflow,
                settings=_stored(settings), paused=settings.paused,
                paused_reason="created paused" if settings.paused else None, consecutive_failures=0,
                next_fire_at=None, last_fire_at=None, last_run_id=None, origin=origin,
                declared_hash=declared_hash, deleted=False, version=(old.version + 1) if old else 1,
                created_at=now, created_by=actor, updated_at=now, updated_by=actor,
            )
            record = replace(record, next_fire_at=self._next_after(record, now))
            entry = self.book.entry(record, "created", actor, detail={"settings": record.settings, "origin": origin})
            record = await self.repo.save(record, is_new=old is None, log=[entry])
            self.firing.arm(tenant_id, schedule_id, record)
            return record

    async def update(self, tenant_id: str, schedule_id: str, changes: dict[str, Any], actor: str) -> ScheduleRecord:
        """Apply a partial change; a new trigger (or resuming) starts counting from now."""
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.book.get(tenant_id, schedule_id)
            # Whether it is paused is the record's (pause, resume and auto-pause change only that),
            # not what the stored settings said when it was created: a change that does not say
            # ``paused`` leaves it as it is.
            merged = {**settings_of(record).model_dump(mode="json"), "paused": record.paused, **changes}
            try:
                settings = ScheduleSettings.model_validate(merged)
            except ValidationError as exc:
                raise failed(exc, "body") from exc
            settings = self._checked(settings, "body.", tenant_id)
            now = self.clock()
            updated = edited(
                record, now, actor, workflow_id=settings.workflow, settings=_stored(settings), paused=settings.paused,
                paused_reason=(record.paused_reason or "paused by hand") if settings.paused else None,
                consecutive_failures=0 if not settings.paused and record.paused else record.consecutive_failures,
            )
            if "trigger" in changes or record.paused != updated.paused:
                updated = replace(updated, next_fire_at=self._next_after(updated, now))
            entry = self.book.entry(record, "updated", actor, detail={"changed": sorted(changes)})
            updated = await self.repo.save(updated, is_new=False, log=[entry])
            self.firing.arm(tenant_id, schedule_id, updated)
            return updated

    async def set_paused(self, tenant_id: str, schedule_id: str, paused: bool, actor: str,
                         reason: str | None = None) -> ScheduleRecord:
        """Pause (the timer stops) or resume (counting from now: times missed while paused are
        not caught up)."""
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.book.get(tenant_id, schedule_id)
            if record.paused == paused:
                return record
            now = self.clock()
            updated = edited(
                record, now, actor, paused=paused, paused_reason=(reason or "paused by hand") if paused else None,
                consecutive_failures=record.consecutive_failures if paused else 0,
            )
            updated = replace(updated, next_fire_at=self._next_after(updated, now))
            entry = self.book.entry(record, "paused" if paused else "resumed", actor, detail={"reason": reason})
            updated = await self.repo.save(updated, is_new=False, log=[entry])
            self.firing.arm(tenant_id, schedule_id, updated)
            return updated

    async def delete(self, tenant_id: str, schedule_id: str, actor: str) -> None:
        """Deleted schedules keep their row (and history); a declared one is not re-created on
        restart unless its declaration in the file changes."""
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.book.get(tenant_id, schedule_id)
            now = self.clock()
            updated = edited(record, now, actor, deleted=True, next_fire_at=None)
            await self.repo.save(updated, is_new=False, log=[self.book.entry(record, "deleted", actor)])
            self.firing.arm(tenant_id, schedule_id, None)

    async def run_now(self, tenant_id: str, schedule_id: str, actor: str, request_id: str | None) -> RunRecord:
        """Fire once now, by hand: counts as a fire (and towards overlap), not as a scheduled time."""
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.book.get(tenant_id, schedule_id)
            entries, run = await self.firing.fire(record, self.clock(), actor=actor, overlap=False,
                                                  request_id=request_id, by_hand=True)
            await self.repo.log(entries)
        if run is None:
            raise ValidationFailed(entries[0].detail.get("error", "the schedule could not fire"),
                                   [{"field": "payload", "message": entries[0].detail.get("error", "")}])
        return run

    async def backfill(self, tenant_id: str, schedule_id: str, start: datetime, end: datetime,
                       actor: str) -> list[datetime]:
        """Fire once for each time the schedule had in ``[start, end]`` (in the past), in order, in
        the background; a time that already fired is noted, not repeated."""
        record = await self.book.get(tenant_id, schedule_id)
        now = self.clock()
        problems = []
        if end > now:
            problems.append({"field": "body.end", "message": "a backfill covers the past; end is after now"})
        if start >= end:
            problems.append({"field": "body.start", "message": "start must be before end"})
        times = [] if problems else calendar_of(record).between(start, end, limit=MAX_BACKFILL + 1)
        if len(times) > MAX_BACKFILL:
            problems.append({"field": "body.start", "message": f"more than {MAX_BACKFILL} fire times in the range"})
        if problems:
            raise ValidationFailed(problems[0]["message"], problems)
        backfill_id = uuid.uuid4().hex
        # Saved over the schedule's version, so the scheduler's leader, in whichever process,
        # sees the schedule change and takes the request up from its history.
        requested = self.book.entry(record, "backfill_requested", actor, detail={
            "start": start.isoformat(), "end": end.isoformat(), "count": len(times), "backfill_id": backfill_id,
            "times": [t.isoformat() for t in times]})
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.repo.save(replace(record, version=record.version + 1), is_new=False, log=[requested])
        self.firing.arm(tenant_id, schedule_id, record)
        self.firing.start_backfill(record, times, actor, backfill_id)
        return times

    async def seed(self, declared: list[DeclaredSchedule]) -> None:
        """Create declared schedules that are new, and re-apply ones whose declaration changed;
        a schedule changed over the API keeps those changes while its declaration stays the same."""
        for declaration in declared:
            digest = hashlib.sha256(orjson.dumps(declaration.model_dump(mode="json"),
                                                 option=orjson.OPT_SORT_KEYS)).hexdigest()
            settings = ScheduleSettings.model_validate(declaration.model_dump(exclude={"id", "tenant"}))
            existing = await self.repo.get(declaration.tenant, declaration.id, deleted=True)
            if existing is not None and existing.declared_hash == digest:
                continue
            try:
                if existing is None or existing.deleted:
                    await self.create(declaration.tenant, declaration.id, settings, CONFIG_ACTOR, origin="config",
                                      declared_hash=digest, prefix="")
                else:
                    await self.update(declaration.tenant, declaration.id, settings.model_dump(mode="json"),
                                      CONFIG_ACTOR)
                    fresh = await self.book.get(declaration.tenant, declaration.id)
                    await self.repo.save(replace(fresh, declared_hash=digest, version=fresh.version + 1),
                                         is_new=False)
            except (WriteConflict, ScheduleExists):  # another process, starting too, applied it first
                log.info("declared schedule applied by another process", schedule_id=declaration.id,
                         tenant=declaration.tenant)
            except ValidationFailed as exc:
                log.warning("declared schedule not loaded", schedule_id=declaration.id, tenant=declaration.tenant,
                            problem=exc.message, details=exc.details)


def _stored(settings: ScheduleSettings) -> dict[str, Any]:
    return settings.model_dump(mode="json", exclude={"workflow"})

