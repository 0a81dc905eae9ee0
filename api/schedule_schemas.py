"""Bodies and answers of the schedule routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.exception_input import Body, UtcDatetime
from config.schedules import OverlapPolicy, ScheduleId, ScheduleSettings, TriggerSpec
from pipeline.schedule_editor import MAX_BACKFILL

WORKFLOW_RULE = (
    "`workflow` names one of the tenant's workflows (`GET /api/v1/workflows`), and `payload` must fit that "
    "workflow's parameters (for an `exception_pipeline` workflow, an `ExceptionIn`); a cron `expression` must "
    "also parse as crontab reads it (values in range, ranges low to high). Both are checked against the "
    "configuration, so a body that fits this schema can still be a 400 naming the field."
)


class ScheduleCreate(ScheduleSettings):
    """A new schedule: its id (unique in the tenant; a taken id is a 409) and what it says."""

    model_config = ConfigDict(json_schema_extra={
        "description": f"A new schedule: its id (unique in the tenant; a taken id is a 409) and what it says. "
                       f"{WORKFLOW_RULE}"})
    id: ScheduleId


def _null_clears_only_the_limit(schema: dict[str, Any]) -> None:
    """Document what the server takes: a field left out stays as it is; ``null`` is a value only for
    ``pause_after_failures`` (no limit), and refused for every other field."""
    for name, prop in schema.get("properties", {}).items():
        options = [option for option in prop.get("anyOf", []) if option != {"type": "null"}]
        if name != "pause_after_failures" and len(options) == 1:
            del prop["anyOf"], prop["default"]
            prop.update(options[0])
    schema["description"] = f"{schema.get('description', '')} {WORKFLOW_RULE}".strip()


class SchedulePatch(Body):
    """Only the fields given change; ``pause_after_failures: null`` clears the limit."""

    model_config = ConfigDict(json_schema_extra=_null_clears_only_the_limit)

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
    """The range of past fire times to fire again."""

    model_config = ConfigDict(json_schema_extra={"description": (
        "The range of past fire times to fire again: `start` must be before `end` (an equal or reversed range is a "
        f"400), `end` must not be in the future, and the range may hold at most {MAX_BACKFILL} fire times."
    )})

    start: UtcDatetime = Field(description="The range's start, before `end`")
    end: UtcDatetime = Field(description="The range's end, after `start`")


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
