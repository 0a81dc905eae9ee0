"""Fire times of cron and interval triggers across daylight-saving changes, and ``plan_due``'s
rules for what is due after a wake: one fire, late ones coalesced, old ones dropped."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config.schedules import TriggerSpec
from pipeline.calendar import Calendar
from pipeline.schedule_plan import ON_TIME, plan_due

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
# Berlin: clocks go forward 2026-03-29 02:00 -> 03:00, back 2026-10-25 03:00 -> 02:00.
# New York: forward 2026-03-08 02:00 -> 03:00, back 2026-11-01 02:00 -> 01:00.


def cron(expression: str, zone: str = "Europe/Berlin") -> Calendar:
    return Calendar(TriggerSpec(type="cron", expression=expression, timezone=zone), datetime(2026, 1, 1, tzinfo=UTC))


def every(seconds: float, start_at: datetime, zone: str = "UTC") -> Calendar:
    spec = TriggerSpec(type="interval", seconds=seconds, start_at=start_at, timezone=zone)
    return Calendar(spec, start_at)


def local(fires: list[datetime], zone: ZoneInfo = BERLIN) -> list[str]:
    return [f.astimezone(zone).strftime("%m-%d %H:%M%z") for f in fires]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_daily_cron_keeps_its_local_wall_time_across_both_changes() -> None:
    nine = cron("0 9 * * *")
    spring = nine.upcoming(utc(2026, 3, 27, 12), 3)
    assert local(spring) == ["03-28 09:00+0100", "03-29 09:00+0200", "03-30 09:00+0200"]
    assert spring[1] - spring[0] == timedelta(hours=23)  # the short day
    autumn = nine.upcoming(utc(2026, 10, 24, 12), 2)
    assert local(autumn) == ["10-25 09:00+0100", "10-26 09:00+0100"]
    assert autumn[0] - utc(2026, 10, 24, 7) == timedelta(hours=25)  # the long day
    assert all(f.tzinfo == UTC for f in spring + autumn)


def test_a_fixed_hour_cron_fires_once_on_the_fall_back_night() -> None:
    fires = cron("30 2 * * *").between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12), limit=10)
    assert local(fires) == ["10-25 02:30+0200", "10-26 02:30+0100"]  # not a second 02:30+0100 on the 25th

    new_york = cron("30 1 * * *", "America/New_York").between(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12), limit=10)
    assert local(new_york, NEW_YORK) == ["11-01 01:30-0400", "11-02 01:30-0500"]


def test_a_fixed_hour_cron_still_fires_right_after_the_repeated_hour() -> None:
    fires = cron("0 1-3 * * *").between(utc(2026, 10, 24, 20), utc(2026, 10, 25, 23), limit=10)
    assert local(fires) == ["10-25 01:00+0200", "10-25 02:00+0200", "10-25 03:00+0100"]


def test_a_stepped_cron_fires_in_both_passes_of_the_repeated_hour() -> None:
    fires = cron("*/30 * * * *").between(utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15), limit=20)
    assert local(fires) == [
        "10-25 02:00+0200", "10-25 02:30+0200", "10-25 02:00+0100", "10-25 02:30+0100", "10-25 03:00+0100",
    ]
    assert all(b - a == timedelta(minutes=30) for a, b in zip(fires, fires[1:], strict=False))


def test_a_time_the_spring_change_skips_fires_once_that_day() -> None:
    fires = cron("30 2 * * *").between(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12), limit=10)
    assert len(fires) == 2
    assert fires[0].astimezone(BERLIN).date().isoformat() == "2026-03-29"
    assert local(fires)[1] == "03-30 02:30+0200"

    half_hours = cron("*/30 * * * *").between(utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 45), limit=10)
    assert local(half_hours) == ["03-29 01:30+0100", "03-29 03:00+0200", "03-29 03:30+0200"]


def test_an_interval_counts_elapsed_time_from_its_start_through_a_change() -> None:
    hourly = every(3600, utc(2026, 10, 24, 20), zone="Europe/Berlin")
    fires = hourly.upcoming(utc(2026, 10, 24, 22, 30), 4)
    assert fires == [utc(2026, 10, 24, 23), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)]
    assert local(fires) == ["10-25 01:00+0200", "10-25 02:00+0200", "10-25 02:00+0100", "10-25 03:00+0100"]

    five_minutes = every(300, utc(2026, 11, 24, 9, 0, 7))
    assert five_minutes.next_after(utc(2026, 11, 24, 9, 0, 7)) == utc(2026, 11, 24, 9, 5, 7)  # strictly after
    assert five_minutes.next_after(utc(2026, 11, 24, 9, 7)) == utc(2026, 11, 24, 9, 10, 7)
    assert five_minutes.between(utc(2026, 11, 24, 9, 5, 7), utc(2026, 11, 24, 9, 15, 7), limit=10) == [
        utc(2026, 11, 24, 9, 5, 7), utc(2026, 11, 24, 9, 10, 7), utc(2026, 11, 24, 9, 15, 7),
    ]  # both ends included
    assert len(five_minutes.between(utc(2026, 11, 24, 9), utc(2026, 11, 25, 9), limit=7)) == 7


def test_a_cron_reads_its_fields_in_its_time_zone() -> None:
    weekday_nine = cron("0 9 * * MON-FRI", "America/New_York")
    fires = weekday_nine.upcoming(utc(2026, 11, 27, 15), 2)  # a Friday, after 09:00 in New York
    assert local(fires, NEW_YORK) == ["11-30 09:00-0500", "12-01 09:00-0500"]  # Monday, Tuesday


@pytest.mark.parametrize("trigger, field", [
    ({"type": "cron", "expression": "61 * * * *"}, "expression"),
    ({"type": "cron", "expression": "* * *"}, "expression"),
    ({"type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Olympus_Mons"}, "timezone"),
])
def test_a_bad_trigger_names_its_field(trigger: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TriggerSpec.model_validate(trigger)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


# -- plan_due ---------------------------------------------------------------------------------

HOURLY = cron("0 * * * *", "UTC")
T = utc(2026, 11, 24, 10)


def test_nothing_is_due_before_the_next_time() -> None:
    plan = plan_due(HOURLY, T, T - timedelta(seconds=1), timedelta(hours=1))
    assert (plan.fire, plan.coalesced, plan.dropped, plan.next_fire_at) == (None, [], [], T)
    assert plan_due(HOURLY, None, T, timedelta(hours=1)).fire is None  # paused / never again


def test_a_time_that_is_due_fires_and_the_next_one_follows() -> None:
    plan = plan_due(HOURLY, T, T, timedelta(0))
    assert (plan.fire, plan.coalesced, plan.dropped) == (T, [], [])
    assert plan.next_fire_at == T + timedelta(hours=1)


def test_a_slightly_late_wake_is_on_time_even_without_catch_up() -> None:
    assert plan_due(HOURLY, T, T + ON_TIME, timedelta(0)).fire == T
    late = plan_due(HOURLY, T, T + ON_TIME + timedelta(seconds=1), timedelta(0))
    assert (late.fire, late.dropped, late.next_fire_at) == (None, [T], T + timedelta(hours=1))


def test_missed_times_in_the_window_coalesce_into_the_latest_and_older_ones_drop() -> None:
    now = T + timedelta(hours=4, minutes=10)  # 14:10; 10..14 were missed
    plan = plan_due(HOURLY, T, now, timedelta(hours=3))
    hours = [T + timedelta(hours=h) for h in range(5)]
    assert plan.fire == hours[4]
    assert plan.coalesced == hours[2:4]  # 12:00 and 13:00: within three hours of 14:10
    assert plan.dropped == hours[:2]
    assert plan.next_fire_at == T + timedelta(hours=5)
    assert not plan.more_dropped


def test_when_every_missed_time_is_too_old_nothing_fires_but_the_schedule_moves_on() -> None:
    now = T + timedelta(hours=2, minutes=30)
    plan = plan_due(HOURLY, T, now, timedelta(minutes=10))
    assert (plan.fire, plan.dropped, plan.next_fire_at) == (None, [T, T + timedelta(hours=1), T + timedelta(hours=2)],
                                                            T + timedelta(hours=3))


def test_a_very_long_downtime_is_counted_not_walked_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.schedule_plan.MAX_DUE", 10)
    minutely = cron("* * * * *", "UTC")
    now = T + timedelta(days=3, seconds=30)
    plan = plan_due(minutely, T, now, timedelta(hours=1))
    assert plan.more_dropped and len(plan.dropped) == 10 and plan.fire is None
    assert plan.next_fire_at == T + timedelta(days=3, minutes=1)  # the first time after now


# -- intervals far from their start -------------------------------------------------------------

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def interval(start_at: str, seconds: float = 1) -> Calendar:
    return Calendar(TriggerSpec.model_validate({"type": "interval", "seconds": seconds, "start_at": start_at}), NOW)


def test_an_interval_counted_from_long_ago_still_moves_forward() -> None:
    """Float timestamps lose the microsecond the calendar steps by: a start centuries back made
    ``next_after`` return its own argument, five equal ``next_fires`` and a 100 000-step walk on
    every wake."""
    calendar = interval("1000-01-01T00:00:00Z")
    first = calendar.next_after(NOW)
    assert first == NOW + timedelta(seconds=1)
    assert calendar.upcoming(NOW, 3) == [NOW + timedelta(seconds=n) for n in (1, 2, 3)]
    started = time.monotonic()
    plan = plan_due(calendar, first, first + timedelta(seconds=5), timedelta(hours=1))
    assert time.monotonic() - started < 0.05
    assert (plan.fire, len(plan.coalesced), plan.more_dropped) == (first + timedelta(seconds=5), 5, False)
    assert plan.next_fire_at == first + timedelta(seconds=6)


def test_an_interval_keeps_its_phase_and_ends_at_the_calendars_end() -> None:
    calendar = interval("2026-11-24T08:59:59.5Z", seconds=1.5)
    assert calendar.next_after(NOW) == datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC)
    assert calendar.next_after(datetime(2026, 11, 24, 9, 0, 1, tzinfo=UTC)) == datetime(
        2026, 11, 24, 9, 0, 2, 500000, tzinfo=UTC)
    assert calendar.next_after(datetime(2000, 1, 1, tzinfo=UTC)) == datetime(2026, 11, 24, 8, 59, 59, 500000,
                                                                             tzinfo=UTC)
    assert interval("9999-12-31T23:59:00Z", seconds=3600).next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
