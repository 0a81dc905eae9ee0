"""Bodies and answers of the schedule routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from agents.exception_input import Body, UtcDatetime
from config.schedules import OverlapPolicy, ScheduleId, ScheduleSettings, TriggerSpec


class ScheduleCreate(ScheduleSettings):
    """A new schedule: its id (unique in the tenant) and what it says."""

    id: ScheduleId


class SchedulePatch(Body):
    """Only the fields given change; ``pause_after_failures: null`` clears the limit."""

    workflow: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")
    trigger: TriggerSpec | None = None
    payload: dict[str, Any] | None = None
    description: str | None = Field(None, max_length=500)
    overlap: OverlapPolicy | None = None
    catch_up_seconds: float | None = Field(None, ge=0, le=30 * 86400)
    jitter_seconds: float | None = Field(None, ge=0, le=3600)
    pause_after_failures: int | None = Field(None, ge=1, le=1000)
    paused: bool | None = None


class PauseRequest(Body):
    reason: str | None = Field(None, min_length=1, max_length=500)


class BackfillRequest(Body):
    start: UtcDatetime
    end: UtcDatetime


class ScheduleOut(BaseModel):
    id: str
    workflow: str
    description: str
    trigger: TriggerSpec
    payload: dict[str, Any]
    overlap: OverlapPolicy
    catch_up_seconds: float
    jitter_seconds: float
    pause_after_failures: int | None
    paused: bool
    paused_reason: str | None
    consecutive_failures: int
    next_fires: list[datetime] = Field(description="The next five fire times (none while paused)")
    last_fire_at: datetime | None
    last_run_id: str | None
    running: int = Field(description="Fires of this schedule still running in this process")
    origin: str = Field(description="'config' (config/schedules.yaml) or 'api'")
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class ScheduleList(BaseModel):
    items: list[ScheduleOut]


class ScheduleLogOut(BaseModel):
    id: int
    at: datetime
    kind: str = Field(description="created, updated, paused, resumed, deleted, fired, skipped, buffered, coalesced, "
                                  "dropped, already_fired, failed, auto_paused, backfill_requested, "
                                  "backfill_done")
    actor: str
    scheduled_for: datetime | None
    run_id: str | None
    detail: dict[str, Any]


class ScheduleHistory(BaseModel):
    items: list[ScheduleLogOut]
    next_cursor: int | None


class RunNowAccepted(BaseModel):
    schedule_id: str
    run_id: str
    workflow_id: str
    status: str


class BackfillAccepted(BaseModel):
    schedule_id: str
    count: int
    times: list[datetime] = Field(description="The fire times being fired, in order, in the background")
