"""When a schedule fires. APScheduler's cron trigger does the calendar arithmetic (cron fields,
time zones, daylight-saving changes), an interval is exact arithmetic from its start; this adds
the questions a scheduler with a memory asks: the first fire after a time, every fire in a
range, the next few."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

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
            self._trigger = CronTrigger.from_crontab(spec.expression, timezone=self.zone)
            hour_field = spec.expression.split()[1]
            self._once_per_wall_time = "*" not in hour_field and "/" not in hour_field
            self._interval: tuple[datetime, timedelta] | None = None
        else:
            assert spec.seconds is not None
            # Exact arithmetic on timedeltas, not APScheduler's IntervalTrigger: it works on float
            # timestamps, which lose the microsecond ``next_after`` steps by once the start is a few
            # centuries back, so it kept answering the time it was given.
            self._interval = ((spec.start_at or anchor).astimezone(UTC), timedelta(seconds=spec.seconds))
            self._once_per_wall_time = False

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire strictly after ``after``; ``None`` if the trigger never fires again."""
        moment = after.astimezone(UTC)
        if self._interval is not None:
            start, step = self._interval
            if moment < start:
                return start
            try:
                return start + ((moment - start) // step + 1) * step
            except OverflowError:  # past the end of the calendar (year 9999)
                return None
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
        fire = self.next_after(start - _TICK) if start > datetime.min.replace(tzinfo=UTC) else self._first()
        while fire is not None and fire <= end and len(fires) < limit:
            fires.append(fire)
            fire = self.next_after(fire)
        return fires

    def _first(self) -> datetime | None:
        """The first fire of the calendar (from its very first moment, included)."""
        if self._interval is not None:
            return self._interval[0]
        fire = self._trigger.get_next_fire_time(None, datetime.min.replace(tzinfo=UTC))
        return fire.astimezone(UTC) if fire is not None else None

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
