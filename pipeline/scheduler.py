"""Fires workflows on their schedules. The store is the schedule's memory (what it says, the
next time it is due, what happened at each fire); APScheduler's ``AsyncIOScheduler`` is the
timer that wakes us at that time. On a wake, or at start-up after downtime, ``plan_due`` says
what is due: one fire, the late ones coalesced into it, the ones too old dropped, each recorded.

A fire starts a run with an idempotency key made of the schedule and the scheduled time, in
the same write as the run, so a fire repeated after a crash finds its run already there.
Overlap is decided here, per schedule: while a fire's run is still going, a new one is skipped,
kept waiting (one at most), or started alongside, as the schedule says."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from config.schedules import DeclaredSchedule, ScheduleSettings
from pipeline.clock import Clock
from pipeline.launcher import Launcher
from pipeline.schedule_changes import ScheduleChanges, edited
from pipeline.schedule_plan import DuePlan, plan_due
from domain.statuses import RunStatus
from store.records import IdempotentResponse, RunRecord, ScheduleLogEntry, ScheduleRecord
from store.schedules import ScheduleRepository
from store.writer import WriteConflict

log = structlog.get_logger(__name__)
Key = tuple[str, str]
WAKE_RETRY = 30.0
"""Seconds before a failed wake is tried again."""
MAX_TIMER_SECONDS = 7 * 86400.0
"""The timer wakes at least this often; a wake with nothing due sets it again."""


def fire_key(schedule_id: str, scheduled_for: datetime) -> str:
    """The idempotency key of one scheduled fire."""
    return f"autopilot/schedule/{schedule_id}/{scheduled_for.astimezone(UTC).isoformat()}"


class ScheduleService(ScheduleChanges):
    def __init__(
        self,
        repo: ScheduleRepository,
        launcher: Launcher,
        *,
        clock: Clock,
        declared: list[DeclaredSchedule] = (),  # type: ignore[assignment]
        timer: bool = True,
        jitter: Callable[[float], float] = lambda most: random.uniform(0, most),
    ) -> None:
        super().__init__(repo, launcher, clock=clock)
        self.declared = list(declared)
        self._jitter = jitter
        self._timer = AsyncIOScheduler(timezone=UTC) if timer else None
        self._inflight: dict[Key, int] = {}
        self._buffered: dict[Key, datetime] = {}
        self._delays: dict[Key, tuple[datetime, timedelta]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Load the declared schedules, catch up on what came due while the service was down, and
        start the timer."""
        await self.seed(self.declared)
        await self._adopt_running()
        for record in await self.repo.every():
            if not record.deleted:
                await self.wake(record.tenant_id, record.id)
                await self._resume_backfills(record)
        if self._timer is not None:
            self._timer.start()

    async def _adopt_running(self) -> None:
        """Fires whose job a stop left ``running`` (and the job runner runs again) are still the
        schedule's last fire: they count for its overlap policy and their outcome for its failures."""
        for run in await self.launcher.engine.runs.unfinished([str(RunStatus.RUNNING)]):
            if run.trigger_type != "scheduled" or not run.trigger_ref:
                continue
            key = (run.tenant_id, run.trigger_ref)
            self._inflight[key] = self._inflight.get(key, 0) + 1
            self._spawn(self._follow(key, run))

    async def stop(self) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every fire in flight (and any it left waiting) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def tick(self) -> None:
        """Handle whatever is due on every schedule now: what the timer does, for all at once."""
        for record in await self.repo.every():
            if not record.deleted:
                await self.wake(record.tenant_id, record.id)

    async def wake(self, tenant_id: str, schedule_id: str) -> None:
        """Handle what is due on one schedule, then set the timer for its next time."""
        async with self.lock(tenant_id, schedule_id):
            record = await self.repo.get(tenant_id, schedule_id)
            if record is None or record.paused:
                self.arm(tenant_id, schedule_id, None)
                return
            # A jittered schedule runs late by its delay: not due before it, and not "missed" for it.
            now = self.clock() - self._delay(record)
            catch_up = timedelta(seconds=self.settings_of(record).catch_up_seconds)
            plan = plan_due(self.calendar(record), record.next_fire_at, now, catch_up)
            if plan.next_fire_at == record.next_fire_at and plan.fire is None:
                self.arm(tenant_id, schedule_id, record)
                return
            entries = self._missed_entries(record, plan, catch_up)
            run, fired_for = None, None
            if plan.fire is not None:
                fired, run = await self.fire(record, plan.fire, coalesced=len(plan.coalesced))
                entries.extend(fired)
                if any(e.kind in ("fired", "already_fired") for e in fired):  # not skipped, buffered, failed
                    fired_for = plan.fire
            record = _advanced(record, plan.next_fire_at, fired_for, run)
            record = await self.repo.save(record, is_new=False, log=entries)
            self.arm(tenant_id, schedule_id, record)

    def _missed_entries(self, record: ScheduleRecord, plan: DuePlan, catch_up: timedelta) -> list[ScheduleLogEntry]:
        """The history of times missed while the service was down: dropped, or coalesced."""
        entries = []
        if plan.dropped or plan.more_dropped:
            entries.append(self.entry(
                record, "dropped", "system:scheduler", scheduled_for=plan.dropped[-1] if plan.dropped else None,
                detail={"count": len(plan.dropped), "more_not_counted": plan.more_dropped,
                        "first": _iso(plan.dropped[0]) if plan.dropped else None,
                        "catch_up_seconds": catch_up.total_seconds()},
            ))
        if plan.coalesced:
            entries.append(self.entry(record, "coalesced", "system:scheduler", scheduled_for=plan.fire, detail={
                "count": len(plan.coalesced), "first": _iso(plan.coalesced[0]), "last": _iso(plan.coalesced[-1]),
            }))
        return entries

    async def fire(
        self, record: ScheduleRecord, scheduled_for: datetime, *, coalesced: int = 0, actor: str | None = None,
        backfill: bool = False, overlap: bool = True, request_id: str | None = None, by_hand: bool = False,
    ) -> tuple[list[ScheduleLogEntry], RunRecord | None]:
        """Start the schedule's run for ``scheduled_for`` unless the overlap policy says not to;
        return what to log, and the run. A fire ``by_hand`` (run-now) is not a scheduled time,
        so it carries no fire key: two in a row are two runs."""
        key = (record.tenant_id, record.id)
        settings = self.settings_of(record)
        who = actor or f"schedule:{record.id}"
        if overlap and self._inflight.get(key, 0) > 0 and settings.overlap != "allow_all":
            if settings.overlap == "buffer_one" and key not in self._buffered:
                self._buffered[key] = scheduled_for
                return [self.entry(record, "buffered", who, scheduled_for=scheduled_for)], None
            reason = "the last fire is still running" if settings.overlap == "skip" else "one fire is already waiting"
            return [self.entry(record, "skipped", who, scheduled_for=scheduled_for, detail={"reason": reason})], None
        try:
            run = await self._start_run(record, settings, scheduled_for, who, coalesced, backfill, request_id,
                                        keyed=not by_hand)
        except WriteConflict:
            return [self.entry(record, "already_fired", who, scheduled_for=scheduled_for)], None
        except Exception as exc:
            log.warning("a scheduled fire could not start", schedule_id=record.id, error=str(exc))
            self._spawn(self._count_outcome(key, None, str(exc)))
            return [self.entry(record, "failed", who, scheduled_for=scheduled_for, detail={"error": str(exc)})], None
        self._inflight[key] = self._inflight.get(key, 0) + 1
        self._spawn(self._follow(key, run))
        detail = {"coalesced": coalesced, "backfill": backfill, "run_status": run.status}
        return [self.entry(record, "fired", who, scheduled_for=scheduled_for, run_id=run.id, detail=detail)], run

    async def _start_run(
        self, record: ScheduleRecord, settings: ScheduleSettings, scheduled_for: datetime, actor: str,
        coalesced: int, backfill: bool, request_id: str | None, *, keyed: bool,
    ) -> RunRecord:
        workflow = self.launcher.workflow(record.workflow_id)
        params = self.launcher.check(workflow, settings.payload, "payload", record.tenant_id)
        key = fire_key(record.id, scheduled_for)
        now = self.clock()

        def remember(run: RunRecord) -> IdempotentResponse:
            answer = orjson.dumps({"run_id": run.id}).decode()
            return IdempotentResponse(record.tenant_id, key, hashlib.sha256(key.encode()).hexdigest(), 202, answer, now)

        return await self.launcher.start(
            record.tenant_id, workflow, params, actor=actor, trigger_type="scheduled", trigger_ref=record.id,
            request_id=request_id, idempotency_for=remember if keyed else None, extra_events=[("schedule.fired", {
                "schedule_id": record.id, "scheduled_for": _iso(scheduled_for), "coalesced": coalesced,
                "backfill": backfill, "by_hand": not keyed,
            })],
        )

    async def _follow(self, key: Key, run: RunRecord) -> None:
        """Wait for a fire's run to finish, count its outcome, then start the fire left waiting."""
        try:
            final = await self.launcher.finished(run)
        finally:
            self._inflight[key] -= 1
        await self._count_outcome(key, final, None)
        waiting = self._buffered.pop(key, None)
        if waiting is None:
            return
        async with self.lock(*key):
            record = await self.repo.get(*key)
            if record is None or record.paused:
                return
            entries, started = await self.fire(record, waiting)
            await self.repo.save(_advanced(record, record.next_fire_at, waiting if started else None, started),
                                 is_new=False,
                                 log=entries)

    async def _count_outcome(self, key: Key, run: RunRecord | None, error: str | None) -> None:
        """A failed run (or a fire that could not start) counts towards pausing the schedule;
        any other outcome resets the count."""
        failed = error is not None or (run is not None and run.status == RunStatus.FAILED)
        async with self.lock(*key):
            record = await self.repo.get(*key)
            if record is None:
                return
            failures = record.consecutive_failures + 1 if failed else 0
            if failures == record.consecutive_failures:
                return
            limit = self.settings_of(record).pause_after_failures
            entries, changes = [], {"consecutive_failures": failures}
            if failed and limit is not None and failures >= limit and not record.paused:
                reason = f"paused after {failures} failed runs in a row"
                changes.update(paused=True, paused_reason=reason, next_fire_at=None)
                entries.append(self.entry(record, "auto_paused", "system:scheduler", run_id=run.id if run else None,
                                          detail={"reason": reason, "last_error": error or _error_of(run)}))
            record = await self.repo.save(edited(record, self.clock(), "system:scheduler", **changes), is_new=False,
                                          log=entries)
            self.arm(*key, record)

    async def backfill_fires(self, record: ScheduleRecord, times: list[datetime], actor: str,
                             backfill_id: str | None = None) -> None:
        """Fire for each past time in order, one after another; a time that already fired is noted.
        Its end is logged (``backfill_done``): one cut short by a stop goes on at the next start."""
        for scheduled_for in times:
            async with self.lock(record.tenant_id, record.id):
                current = await self.repo.get(record.tenant_id, record.id)
                if current is None:
                    return
                entries, run = await self.fire(current, scheduled_for, actor=actor, backfill=True, overlap=False)
                await self.repo.log(entries)
            if run is not None:
                await self.launcher.finished(run)
        if backfill_id is not None:
            await self.repo.log([self.entry(record, "backfill_done", actor, detail={"backfill_id": backfill_id})])

    async def _resume_backfills(self, record: ScheduleRecord) -> None:
        """Take up the backfills a stop cut short: the times they had fired are ``already_fired``
        (their runs carry the fire's key), the others fire now."""
        log = await self.repo.history(record.tenant_id, record.id, kinds=["backfill_requested", "backfill_done"],
                                      limit=10_000)
        done = {e.detail.get("backfill_id") for e in log if e.kind == "backfill_done"}
        for entry in reversed(log):  # oldest first
            backfill_id = entry.detail.get("backfill_id")
            if entry.kind != "backfill_requested" or not backfill_id or backfill_id in done:
                continue
            times = [datetime.fromisoformat(t) for t in entry.detail.get("times", [])]
            self._spawn(self.backfill_fires(record, times, entry.actor, backfill_id))

    def arm(self, tenant_id: str, schedule_id: str, record: ScheduleRecord | None) -> None:
        """Set (or clear) the timer for the schedule's next fire, delayed by its jitter."""
        if self._timer is None:
            return
        job_id = f"{tenant_id}/{schedule_id}"
        if record is None or record.paused or record.deleted or record.next_fire_at is None:
            if self._timer.get_job(job_id):
                self._timer.remove_job(job_id)
            return
        # The timer runs on the real clock, the schedule on the service's (a test's may stand
        # still): wake after the schedule-clock delay, so a stopped clock cannot spin the timer.
        # Capped: a wake with nothing due only arms again, and a time near the end of the calendar
        # plus its jitter would not fit in a datetime.
        due_in = (record.next_fire_at - self.clock() + self._delay(record)).total_seconds()
        self._set_timer(tenant_id, schedule_id, min(max(0.0, due_in), MAX_TIMER_SECONDS))

    def _set_timer(self, tenant_id: str, schedule_id: str, seconds: float) -> None:
        """The schedule's one timer job, replaced: wake it ``seconds`` from now (real time)."""
        assert self._timer is not None
        self._timer.add_job(
            self._timed_wake, trigger=DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=seconds)),
            args=[tenant_id, schedule_id], id=f"{tenant_id}/{schedule_id}", replace_existing=True,
            misfire_grace_time=None, coalesce=True,
        )

    async def _timed_wake(self, tenant_id: str, schedule_id: str) -> None:
        """The timer's call: a wake that fails (the database away) is tried again shortly, so the
        schedule is not left without a timer until the next restart."""
        try:
            await self.wake(tenant_id, schedule_id)
        except Exception:
            log.exception("a schedule's wake failed; trying again", schedule_id=schedule_id, retry_seconds=WAKE_RETRY)
            if self._timer is not None and self._timer.running:
                self._set_timer(tenant_id, schedule_id, WAKE_RETRY)

    def _delay(self, record: ScheduleRecord) -> timedelta:
        """The jitter of the schedule's next fire: drawn once per fire time, so the timer and a
        wake (or a ``tick``) agree on when it is due."""
        key = (record.tenant_id, record.id)
        most = self.settings_of(record).jitter_seconds
        if not most or record.next_fire_at is None:
            self._delays.pop(key, None)
            return timedelta(0)
        drawn = self._delays.get(key)
        if drawn is None or drawn[0] != record.next_fire_at:
            drawn = self._delays[key] = (record.next_fire_at, timedelta(seconds=self._jitter(most)))
        return drawn[1]

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def busy(self, tenant_id: str, schedule_id: str) -> int:
        """Fires of this schedule still running."""
        return self._inflight.get((tenant_id, schedule_id), 0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _error_of(run: RunRecord | None) -> str | None:
    return run.state.get("error") if run is not None else None


def _advanced(
    record: ScheduleRecord, next_fire_at: datetime | None, fired_for: datetime | None, run: RunRecord | None
) -> ScheduleRecord:
    """The record after a wake: its next time, and the fire it made."""
    return replace(
        record, next_fire_at=next_fire_at, version=record.version + 1,
        last_fire_at=fired_for or record.last_fire_at, last_run_id=run.id if run else record.last_run_id,
    )
