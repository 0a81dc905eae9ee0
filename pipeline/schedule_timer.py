"""Fires schedules when they are due. The store is the schedule's memory (what it says, the next
time it is due, what happened at each fire); the alarm (``pipeline.schedule_alarm``) wakes us
at that time. On a wake, or at start-up after downtime, ``plan_due`` says what is due:
one fire, the late ones coalesced into it, the ones too old dropped, each recorded.

A fire starts a run with an idempotency key made of the schedule and the scheduled time, in
the same write as the run, so a fire repeated after a crash finds its run already there.
Overlap is decided here, per schedule: while a fire's run is still going, a new one is skipped,
kept waiting (one at most), or started alongside, as the schedule says.

Among several processes only the leader's timer fires (``pipeline.schedule_leader``): it
``lead``s as a single process starts, ``resign``s when it loses the lock, and ``sync``s what
other processes changed. Elsewhere the timer only makes fires by hand (run-now), which the
leader follows from the store: it adopts every scheduled job run still ``running`` that it does
not follow yet, waiting for its end in the store when another process runs it. A buffered fire
is kept in the leader's memory and is lost when the leader dies."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog

from config.schedules import ScheduleSettings
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.launcher import Launcher
from pipeline.schedule_alarm import ScheduleAlarm, uniform_jitter
from pipeline.schedule_plan import DuePlan, plan_due
from pipeline.schedule_records import ScheduleBook, advanced, calendar_of, edited, iso, settings_of
from pipeline.schedule_watch import ScheduleWatch
from pipeline.start_request import IdempotencySpec, StartRequest
from store.records import RunRecord, ScheduleLogEntry, ScheduleRecord
from store.writer import WriteConflict

log = structlog.get_logger(__name__)
Key = tuple[str, str]
ENDED_REMEMBERED = 1024
"""Fires whose end this leader saw, remembered so a read of the store made just before their
end does not adopt them again."""
WAKE_TRIES = 3


def fire_key(schedule_id: str, scheduled_for: datetime) -> str:
    """The idempotency key of one scheduled fire."""
    return f"autopilot/schedule/{schedule_id}/{scheduled_for.astimezone(UTC).isoformat()}"


class ScheduleTimer:
    """Wakes each schedule at its next time, fires what is due, and follows each fire's run for
    the schedule's overlap policy and its count of failures. Without an alarm (``alarm=False``)
    it wakes only when told to (``tick``, ``wake``). It fires on its own only while ``leading``."""

    def __init__(
        self, book: ScheduleBook, launcher: Launcher, *, alarm: bool,
        jitter: Callable[[float], float] = uniform_jitter, poll_seconds: float = 1.0,
    ) -> None:
        self.book, self.launcher, self.clock = book, launcher, book.clock
        self._alarm = ScheduleAlarm(self.wake, clock=book.clock, ringing=alarm, jitter=jitter)
        self._watch = ScheduleWatch(book.repo)
        self.poll_seconds = poll_seconds
        self.leading = False
        self._inflight: dict[Key, int] = {}
        self._buffered: dict[Key, datetime] = {}
        self._following: set[str] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._backfilling: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Start the alarm; it is armed only while this process leads."""
        self._alarm.start()

    async def lead(self) -> None:
        """Become the one that fires: take up the fires and backfills left going (by a stop, or by
        the leader before), catch up on what came due, and set the alarm."""
        self.leading = True
        await self._watch.begin()
        await self._adopt_running()
        for record in await self.book.repo.every():
            if not record.deleted:
                await self.wake(record.tenant_id, record.id)
                await self._resume_backfills(record)

    async def resign(self) -> None:
        """Stop firing: the alarm is cleared and the fires followed are left to the next leader,
        which adopts them from the store."""
        self.leading = False
        self._alarm.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._inflight.clear()
        self._buffered.clear()
        self._following.clear()
        self._ended.clear()
        self._backfilling.clear()

    async def sync(self) -> None:
        """Take in what other processes did: schedules changed there are read again and armed
        (and their backfill requests taken up); fires they made by hand are followed."""
        if not self.leading:
            return
        for tenant_id, schedule_id in await self._watch.changed():
            record = await self.book.repo.get(tenant_id, schedule_id)
            self.arm(tenant_id, schedule_id, record)
            if record is not None:
                await self._resume_backfills(record)
        await self._adopt_running()

    async def _adopt_running(self) -> None:
        """Scheduled job runs still ``running`` that this leader does not follow (left by a stop,
        by the leader before, or made by hand on another process) are the schedule's fires too:
        they count for its overlap policy and their outcome for its failures."""
        for run in await self.launcher.writer.runs.unfinished([str(RunStatus.RUNNING)]):
            if run.trigger_type == "scheduled" and run.trigger_ref:
                self._track((run.tenant_id, run.trigger_ref), run)

    def _track(self, key: Key, run: RunRecord) -> None:
        """Count ``run`` as in flight for ``key`` and follow it, once."""
        if run.id in self._following or run.id in self._ended:
            return
        self._following.add(run.id)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        self._spawn(self._follow(key, run))

    async def stop(self) -> None:
        self._alarm.stop()
        await self.resign()

    async def drain(self) -> None:
        """Wait until every fire in flight (and any it left waiting) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def tick(self) -> None:
        """Handle whatever is due on every schedule now: what the alarm does, for all at once
        (only on the leader, after taking in what other processes did)."""
        if not self.leading:
            return
        await self.sync()
        for record in await self.book.repo.every():
            if not record.deleted:
                await self.wake(record.tenant_id, record.id)

    def arm(self, tenant_id: str, schedule_id: str, record: ScheduleRecord | None) -> None:
        """Set the alarm for the schedule's next time (``record`` as saved), or clear it (``None``);
        only the leader's alarm is set."""
        if record is not None:
            self._watch.saw(record)
        if self.leading:
            self._alarm.arm(tenant_id, schedule_id, record)

    def busy(self, tenant_id: str, schedule_id: str) -> int:
        """Fires of this schedule still running."""
        return self._inflight.get((tenant_id, schedule_id), 0)

    async def wake(self, tenant_id: str, schedule_id: str) -> None:
        """Handle what is due on one schedule, then set the alarm for its next time. A save that
        loses to a change made meanwhile (by another process) is planned again over that change;
        a time fired already is not fired again."""
        fired: dict[datetime, tuple[list[ScheduleLogEntry], RunRecord | None]] = {}
        for attempt in range(WAKE_TRIES):
            if not self.leading:
                return
            try:
                await self._wake(tenant_id, schedule_id, fired)
                return
            except WriteConflict:
                if attempt == WAKE_TRIES - 1:
                    raise

    async def _wake(self, tenant_id: str, schedule_id: str,
                    fired: dict[datetime, tuple[list[ScheduleLogEntry], RunRecord | None]]) -> None:
        async with self.book.lock(tenant_id, schedule_id):
            record = await self.book.repo.get(tenant_id, schedule_id)
            if record is None or record.paused:
                self.arm(tenant_id, schedule_id, None)
                return
            # A jittered schedule runs late by its delay: not due before it, and not "missed" for it.
            now = self.clock() - self._alarm.delay(record)
            catch_up = timedelta(seconds=settings_of(record).catch_up_seconds)
            plan = plan_due(calendar_of(record), record.next_fire_at, now, catch_up)
            # What an earlier attempt fired, for a time the schedule has moved past since, is
            # still history (its save lost to the other process's).
            earlier = [e for when, (made, _) in fired.items() if when != plan.fire for e in made]
            if plan.next_fire_at == record.next_fire_at and plan.fire is None:
                await self.book.repo.log(earlier)
                self.arm(tenant_id, schedule_id, record)
                return
            entries = earlier + self._missed_entries(record, plan, catch_up)
            run, fired_for = None, None
            if plan.fire is not None:
                if plan.fire not in fired:
                    fired[plan.fire] = await self.fire(record, plan.fire, coalesced=len(plan.coalesced))
                made, run = fired[plan.fire]
                entries.extend(made)
                if any(e.kind in ("fired", "already_fired") for e in made):  # not skipped, buffered, failed
                    fired_for = plan.fire
            record = advanced(record, plan.next_fire_at, fired_for, run)
            record = await self.book.repo.save(record, is_new=False, log=entries)
            self.arm(tenant_id, schedule_id, record)

    def _missed_entries(self, record: ScheduleRecord, plan: DuePlan, catch_up: timedelta) -> list[ScheduleLogEntry]:
        """The history of times missed while the service was down: dropped, or coalesced."""
        entries = []
        if plan.dropped or plan.more_dropped:
            entries.append(self.book.entry(
                record, "dropped", "system:scheduler", scheduled_for=plan.dropped[-1] if plan.dropped else None,
                detail={"count": len(plan.dropped), "more_not_counted": plan.more_dropped,
                        "first": iso(plan.dropped[0]) if plan.dropped else None,
                        "catch_up_seconds": catch_up.total_seconds()},
            ))
        if plan.coalesced:
            entries.append(self.book.entry(record, "coalesced", "system:scheduler", scheduled_for=plan.fire, detail={
                "count": len(plan.coalesced), "first": iso(plan.coalesced[0]), "last": iso(plan.coalesced[-1]),
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
        settings = settings_of(record)
        who = actor or f"schedule:{record.id}"
        entry = self.book.entry
        if overlap and self._inflight.get(key, 0) > 0 and settings.overlap != "allow_all":
            if settings.overlap == "buffer_one" and key not in self._buffered:
                self._buffered[key] = scheduled_for
                return [entry(record, "buffered", who, scheduled_for=scheduled_for)], None
            reason = "the last fire is still running" if settings.overlap == "skip" else "one fire is already waiting"
            return [entry(record, "skipped", who, scheduled_for=scheduled_for, detail={"reason": reason})], None
        try:
            run = await self._start_run(record, settings, scheduled_for, who, coalesced, backfill, request_id,
                                        keyed=not by_hand)
        except WriteConflict:
            return [entry(record, "already_fired", who, scheduled_for=scheduled_for)], None
        except Exception as exc:
            log.warning("a scheduled fire could not start", schedule_id=record.id, error=str(exc))
            self._spawn(self._count_outcome(key, None, str(exc)))
            return [entry(record, "failed", who, scheduled_for=scheduled_for, detail={"error": str(exc)})], None
        if self.leading:  # elsewhere the leader adopts it from the store
            self._track(key, run)
        detail = {"coalesced": coalesced, "backfill": backfill, "run_status": run.status, "by_hand": by_hand}
        return [entry(record, "fired", who, scheduled_for=scheduled_for, run_id=run.id, detail=detail)], run

    async def _start_run(
        self, record: ScheduleRecord, settings: ScheduleSettings, scheduled_for: datetime, actor: str,
        coalesced: int, backfill: bool, request_id: str | None, *, keyed: bool,
    ) -> RunRecord:
        workflow = self.launcher.workflow(record.workflow_id)
        params = self.launcher.check(workflow, settings.payload, "payload", record.tenant_id)
        key = fire_key(record.id, scheduled_for)

        fired = IdempotencySpec(record.tenant_id, key, hashlib.sha256(key.encode()).hexdigest(), 202,
                                lambda run: orjson.dumps({"run_id": run.id}).decode())
        return await self.launcher.start(workflow, StartRequest(
            record.tenant_id, workflow.id, params, actor=actor, trigger_type="scheduled", trigger_ref=record.id,
            request_id=request_id, idempotency=fired if keyed else None, extra_events=((Topic.SCHEDULE_FIRED, {
                "schedule_id": record.id, "scheduled_for": iso(scheduled_for), "coalesced": coalesced,
                "backfill": backfill, "by_hand": not keyed,
            }),),
        ))

    async def _follow(self, key: Key, run: RunRecord) -> None:
        """Wait for a fire's run to finish, count its outcome, then start the fire left waiting."""
        try:
            final = await self._finished(run)
        finally:
            self._inflight[key] -= 1
            self._following.discard(run.id)
            self._ended[run.id] = None
            while len(self._ended) > ENDED_REMEMBERED:
                self._ended.popitem(last=False)
        await self._count_outcome(key, final, None)
        waiting = self._buffered.pop(key, None)
        if waiting is None:
            return
        async with self.book.lock(*key):
            record = await self.book.repo.get(*key)
            if record is None or record.paused:
                return
            entries, started = await self.fire(record, waiting)
            record = advanced(record, record.next_fire_at, waiting if started else None, started)
            await self.book.repo.save(record, is_new=False, log=entries)

    async def _finished(self, run: RunRecord) -> RunRecord:
        """The run once it has ended; a job another process runs is read from the store until it
        has."""
        final = await self.launcher.finished(run)
        while final.status == RunStatus.RUNNING:
            await asyncio.sleep(self.poll_seconds)
            fresh = await self.launcher.writer.runs.get(run.tenant_id, run.id)
            if fresh is None:
                break
            final = fresh
        return final

    async def _count_outcome(self, key: Key, run: RunRecord | None, error: str | None) -> None:
        """A failed run (or a fire that could not start) counts towards pausing the schedule;
        any other outcome resets the count."""
        failed = error is not None or (run is not None and run.status == RunStatus.FAILED)
        async with self.book.lock(*key):
            record = await self.book.repo.get(*key)
            if record is None:
                return
            failures = record.consecutive_failures + 1 if failed else 0
            if failures == record.consecutive_failures:
                return
            limit = settings_of(record).pause_after_failures
            entries: list[ScheduleLogEntry] = []
            changes: dict[str, Any] = {"consecutive_failures": failures}
            if failed and limit is not None and failures >= limit and not record.paused:
                reason = f"paused after {failures} failed runs in a row"
                changes.update(paused=True, paused_reason=reason, next_fire_at=None)
                entries.append(self.book.entry(
                    record, "auto_paused", "system:scheduler", run_id=run.id if run else None,
                    detail={"reason": reason, "last_error": error or (run.state.error if run else None)},
                ))
            record = await self.book.repo.save(edited(record, self.clock(), "system:scheduler", **changes),
                                               is_new=False, log=entries)
            self.arm(*key, record)

    def start_backfill(self, record: ScheduleRecord, times: list[datetime], actor: str, backfill_id: str) -> None:
        """Fire for each of ``times`` in the background (``backfill_fires``), on the leader; the
        request is in the schedule's history, where a leader elsewhere takes it up."""
        if not self.leading or backfill_id in self._backfilling:
            return
        self._backfilling.add(backfill_id)
        self._spawn(self._backfill_fires(record, times, actor, backfill_id))

    async def _backfill_fires(self, record: ScheduleRecord, times: list[datetime], actor: str,
                              backfill_id: str) -> None:
        """Fire for each past time in order, one after another; a time that already fired is noted.
        Its end is logged (``backfill_done``): one cut short by a stop goes on at the next start."""
        for scheduled_for in times:
            async with self.book.lock(record.tenant_id, record.id):
                current = await self.book.repo.get(record.tenant_id, record.id)
                if current is None:
                    return
                entries, run = await self.fire(current, scheduled_for, actor=actor, backfill=True, overlap=False)
                await self.book.repo.log(entries)
            if run is not None:
                await self.launcher.finished(run)
        await self.book.repo.log([self.book.entry(record, "backfill_done", actor, detail={"backfill_id": backfill_id})])

    async def _resume_backfills(self, record: ScheduleRecord) -> None:
        """Take up the backfills a stop cut short: the times they had fired are ``already_fired``
        (their runs carry the fire's key), the others fire now."""
        history = await self.book.repo.history(record.tenant_id, record.id,
                                               kinds=["backfill_requested", "backfill_done"], limit=10_000)
        done = {e.detail.get("backfill_id") for e in history if e.kind == "backfill_done"}
        for entry in reversed(history):  # oldest first
            backfill_id = entry.detail.get("backfill_id")
            if entry.kind != "backfill_requested" or not backfill_id or backfill_id in done:
                continue
            times = [datetime.fromisoformat(t) for t in entry.detail.get("times", [])]
            self.start_backfill(record, times, entry.actor, backfill_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
