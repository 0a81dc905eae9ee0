"""Review of the workflows-and-schedules change: defects found in the pipeline, each with its test."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from config.schedules import TriggerSpec
from pipeline.calendar import Calendar
from pipeline.schedule_plan import plan_due
from tests.pipeline.test_scheduler import TENANT as SCHEDULE_TENANT
from tests.pipeline.test_scheduler import Gate, gated, nodes  # noqa: F401  (fixture)
from tests.pipeline.test_scheduler import settings as scheduler_settings
from tests.pipeline.test_sla_sweep import counts, sweepers  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def test_runs_already_breached_do_not_crowd_newer_ones_out_of_the_sweep(db, sweepers, clock) -> None:  # noqa: F811
    """Breached runs stay open (paused, say) and keep the earliest deadlines: with the limit
    filled by them, a run that came due later must still be marked."""
    s = await sweepers(db)
    early = [await s.start("globex", "15000", deadline_minutes=10 + i) for i in range(2)]
    late = await s.start("globex", "15000", deadline_minutes=60)
    assert {r.status for r in [*early, late]} == {"paused"}
    clock.advance(minutes=20)
    assert counts(await s.sweep("globex", limit=2)) == {"runs_checked": 2, "breached": 2}
    clock.advance(minutes=50)  # the late one is past its deadline too now
    job = await s.sweep("globex", limit=2)
    assert (await s.get(late)).state.get("sla", {}).get("level") == "breached", counts(job)


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


async def test_a_fire_still_running_when_the_service_stopped_counts_for_overlap_after_restart(db, nodes, clock) -> None:  # noqa: F811
    """A scheduled job left ``running`` by a stop runs again on start; ``skip`` must see it as the
    last fire still running, not start a second one beside it."""
    gate = Gate()
    first = await nodes(db, kinds=gated(gate))
    minutely = scheduler_settings(trigger={"type": "cron", "expression": "* * * * *"})
    await first.service.create(SCHEDULE_TENANT, "minutely", minutely, "user:ann")
    clock.advance(minutes=1)
    await first.tick()
    assert gate.started == 1
    await first.stop()  # the job's run stays running

    clock.advance(minutes=1)
    second = await nodes(db, kinds=gated(gate))  # re-runs the job, and catches up on the minute missed
    await asyncio.sleep(0)
    assert gate.started == 2  # the interrupted job, again
    assert second.service.busy(SCHEDULE_TENANT, "minutely") == 1
    assert [e.kind for e in await second.history("minutely")][-1] == "skipped"
    assert len(await second.runs("minutely")) == 1
    gate.open.set()
    await second.settle()
    assert second.service.busy(SCHEDULE_TENANT, "minutely") == 0


async def test_a_backfill_cut_short_by_a_stop_goes_on_after_restart(db, nodes, clock) -> None:  # noqa: F811
    """A backfill is a promise recorded in the history (``backfill_requested`` with its count):
    the times it had not fired when the service stopped fire after the restart, once each."""
    gate = Gate()
    first = await nodes(db, kinds=gated(gate))
    await first.service.create(SCHEDULE_TENANT, "hourly", scheduler_settings(), "user:ann")
    clock.advance(minutes=30)
    hours = [datetime(2026, 11, 24, h, tzinfo=UTC) for h in (6, 7, 8)]
    assert await first.service.backfill(SCHEDULE_TENANT, "hourly", hours[0], hours[-1], "user:ann") == hours
    for _ in range(50):
        if gate.started:
            break
        await asyncio.sleep(0.01)
    assert gate.started == 1  # 06:00 is running; 07:00 and 08:00 wait for it
    await first.stop()

    gate.open.set()
    second = await nodes(db, kinds=gated(gate))
    await second.settle()
    for _ in range(100):
        fired = sorted([(await second.fired_for(r))["scheduled_for"] for r in await second.runs("hourly")])
        if len(fired) == 3:
            break
        await asyncio.sleep(0.02)
        await second.settle()
    assert fired == [h.isoformat() for h in hours]
    await second.stop()
    third = await nodes(db, kinds=gated(gate))  # a finished backfill is not taken up again
    await third.settle()
    assert len(await third.runs("hourly")) == 3
    assert [e.kind for e in await third.history("hourly")].count("already_fired") <= 1
