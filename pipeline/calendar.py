"""When a schedule fires. APScheduler's triggers do the calendar arithmetic (cron fields, time
zones, daylight-saving changes); this adds the questions a scheduler with a memory asks: the
first fire after a time, every fire in a range, the next few."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.schedules import TriggerSpec

_TICK = timedelta(microseconds=1)


class Calendar:
    """Fire times of one trigger, as aware UTC datetimes.

    A cron expression with fixed hours fires once on the night the clocks go back, as cron
    does: the repeated hour's second pass is skipped. One whose hour field is a wildcard or a
    step (``*/2``) fires in both passes, since it means "every hour"."""

    def __init__(self, spec: TriggerSpec, anchor: datetime) -> None:
        self.zone = ZoneInfo(spec.timezone)
        if spec.type == "cron":
            assert spec.expression is not None
            self._trigger: CronTrigger | IntervalTrigger = CronTrigger.from_crontab(
                spec.expression, timezone=self.zone
            )
            hour_field = spec.expression.split()[1]
            self._once_per_wall_time = "*" not in hour_field and "/" not in hour_field
        else:
            assert spec.seconds is not None
            self._trigger = IntervalTrigger(
                seconds=spec.seconds, start_date=spec.start_at or anchor, timezone=self.zone
            )
            self._once_per_wall_time = False

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire strictly after ``after``; ``None`` if the trigger never fires again."""
        moment = after.astimezone(UTC)
        while True:
            fire = self._trigger.get_next_fire_time(None, moment + _TICK)
            if fire is None:
                return None
            if self._once_per_wall_time and self._is_second_pass(fire):
                # Fired in the first pass: look past it, in UTC (local arithmetic on a repeated
                # time lands back in its first pass).
                moment = fire.astimezone(UTC)
                continue
            return fire.astimezone(UTC)

    def between(self, start: datetime, end: datetime, *, limit: int) -> list[datetime]:
        """Fires in ``[start, end]``, at most ``limit`` of them."""
        fires: list[datetime] = []
        fire = self.next_after(start - _TICK)
        while fire is not None and fire <= end and len(fires) < limit:
            fires.append(fire)
            fire = self.next_after(fire)
        return fires

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        fires: list[datetime] = []
        fire = self.next_after(after)
        while fire is not None and len(fires) < count:
            fires.append(fire)
            fire = self.next_after(fire)
        return fires

    def _is_second_pass(self, fire: datetime) -> bool:
        """Whether ``fire`` is the second pass of a local time repeated when the clocks went back."""
        local = fire.astimezone(self.zone)
        first = local.replace(fold=0).utcoffset()
        second = local.replace(fold=1).utcoffset()
        return local.fold == 1 and first is not None and second is not None and first > second
