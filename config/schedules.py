"""Schedules that fire workflows (``config/schedules.yaml``, and the same shape over the API).

A trigger is a cron expression in a time zone, or a fixed interval. Both are checked here, so a
bad expression or an unknown zone is reported with its field wherever it was written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from config.rfc3339 import UtcDatetime
from config.yaml_source import Declaration, check_unique_per_tenant, load_model

ScheduleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
OverlapPolicy = Literal["skip", "buffer_one", "allow_all"]


class TriggerSpec(Declaration):
    """``cron``: a standard five-field expression (minute hour day month weekday) read in
    ``timezone``. ``interval``: every ``seconds``, counted from ``start_at`` (when the schedule
    was created, if unset)."""

    type: Literal["cron", "interval"]
    expression: str | None = Field(None, min_length=1, max_length=200, examples=["0 9 * * MON-FRI"])
    seconds: float | None = Field(None, ge=1, le=366 * 86400)
    start_at: UtcDatetime | None = None
    timezone: str = Field("UTC", examples=["Europe/Paris"])

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    @field_validator("expression")
    @classmethod
    def _expression_parses(cls, expression: str | None) -> str | None:
        if expression is not None:
            try:
                CronTrigger.from_crontab(expression, timezone=ZoneInfo("UTC"))
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {expression!r}: {exc}") from exc
        return expression

    @model_validator(mode="after")
    def _fields_fit_type(self) -> TriggerSpec:
        if self.type == "cron" and (self.expression is None or self.seconds is not None):
            raise ValueError("a cron trigger needs 'expression' and no 'seconds'")
        if self.type == "interval" and (self.seconds is None or self.expression is not None):
            raise ValueError("an interval trigger needs 'seconds' and no 'expression'")
        return self


class ScheduleSettings(Declaration):
    """What a schedule says, apart from who owns it: shared by the YAML file and the API."""

    workflow: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    trigger: TriggerSpec
    payload: dict[str, Any] = Field(default_factory=dict, description="The workflow's parameters")
    description: str = Field("", max_length=500)
    overlap: OverlapPolicy = Field(
        "skip", description="When a fire comes while the last one is still running: skip it, keep one "
        "waiting, or run them side by side",
    )
    catch_up_seconds: float = Field(
        3600, ge=0, le=30 * 86400,
        description="Fires missed (service down) within this window run once, coalesced; older ones are dropped",
    )
    jitter_seconds: float = Field(0, ge=0, le=3600, description="Each fire is delayed by up to this, at random")
    pause_after_failures: int | None = Field(
        None, ge=1, le=1000, description="Pause the schedule after this many failed runs in a row",
    )
    paused: bool = False


class DeclaredSchedule(ScheduleSettings):
    id: ScheduleId
    tenant: str = Field(min_length=1, max_length=64)


class ScheduleFile(Declaration):
    schedules: list[DeclaredSchedule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique_per_tenant(self) -> ScheduleFile:
        check_unique_per_tenant(self.schedules, "schedule")
        return self


def load_schedules(path: Path) -> ScheduleFile:
    """The declared schedules; a missing file declares none."""
    return load_model(path, ScheduleFile) if path.exists() else ScheduleFile()
