"""The engine: advances many runs concurrently through their stages, one committed
transition at a time, picks unfinished runs up again after a restart, and applies
human decisions to paused runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from agents.llm_triage import TriageAdvisor
from agents.tool_client import ToolClient, ToolFailed
from agents.triage import triage
from config.catalog import Catalog
from eventbus import EventBus
from pipeline.clock import Clock, IdFactory, utc_now
from pipeline.committer import GroupCommitter
from domain.errors import LoopConflict, RunChanged, RunNotFound, RunNotPaused, StepNotFound
from pipeline.hitl import Decider, apply_decision, check_decider, check_payload
from pipeline.outcomes import fail
from pipeline.recalculation import recalculate
from pipeline.stages import STAGES, record_triage
from domain.statuses import RunStatus
from pipeline.step_completion import StepCompletion, complete_step
from pipeline.tool_results import record_call
from pipeline.transition import Transition
from store.records import IdempotentResponse, IngestedItem, RunRecord, RunWrite
from store.runs import RunRepository
from store.writer import WriteConflict

log = structlog.get_logger(__name__)

COMMIT_RETRIES = 5
T = TypeVar("T")


class PipelineEngine:
    def __init__(
        self,
        db: AsyncEngine,
        bus: EventBus,
        catalog: Catalog,
        *,
        clock: Clock = utc_now,
        ids: IdFactory | None = None,
        workers: int = 32,
        max_batch: int = 1000,
        triage_advisor: TriageAdvisor | None = None,
    ) -> None:
        self.catalog = catalog
        self.triage_advisor = triage_advisor
        """Asks the model when triage's rules are weak; None (the default) keeps triage on rules alone."""
        self.db = db
        self.runs = RunRepository(db)
        self.committer = GroupCommitter(db, bus, max_batch=max_batch)
        self.clock = clock
        self.ids = ids or IdFactory()
        self._worker_count = workers
        self._queue: asyncio.Queue[RunRecord] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self.tools = ToolClient(catalog.tools)
        self._claims: set[tuple[str, str]] = set()
        """(run, step) tool calls this process claimed and has not made yet."""
        self._advancing: set[str] = set()
        """Runs a worker or a run-next-step call is advancing right now."""

    async def start(self) -> int:
        """Start committing and advancing; return how many unfinished runs were picked up."""
        self.committer.start()
        recovered = await self.runs.unfinished([str(s) for s in STAGES])
        for run in recovered:
            self._queue.put_nowait(run)
        self._workers = [
            asyncio.create_task(self._work(), name=f"pipeline-worker-{i}")
            for i in range(self._worker_count)
        ]
        if recovered:
            log.info("recovered unfinished runs", count=len(recovered))
        return len(recovered)

    async def stop(self) -> None:
        """Stop advancing. A transition already submitted still commits; the rest of a run's
        stages are picked up from the store on the next start."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        await self.committer.stop()
        await self.tools.close()
        if self.triage_advisor is not None:
            await self.triage_advisor.close()

    async def drain(self) -> None:
        """Wait until every queued run has paused, is waiting, or has ended."""
        await self._queue.join()

    @property
    def queued(self) -> int:
        """Runs waiting for a worker."""
        return self._queue.qsize()

    def new_run_id(self) -> str:
        return self.ids("run")

    async def start_run(
        self,
        tenant_id: str,
        workflow_id: str,
        exception: dict[str, Any],
        *,
        actor: str,
        trigger_type: str,
        trigger_ref: str | None = None,
        run_id: str | None = None,
        request_id: str | None = None,
        idempotency_for: Callable[[RunRecord], IdempotentResponse | None] | None = None,
        extra_events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
        ingested: tuple[str, str] | None = None,
    ) -> RunRecord:
        """Record a new run and advance it through its local stages, durably in one write.

        Returns once that write is committed: the run has then paused, is waiting, or has
        ended (or, when a stage must act outside, is queued for a worker). ``ingested`` is the
        (source, item key) an ingest read it from: if that item already has a run, nothing is
        written and ``WriteConflict`` is raised."""
        now = self.clock()
        deadline = exception.get("sla_deadline")
        run = RunRecord(
            id=run_id or self.new_run_id(), tenant_id=tenant_id, workflow_id=workflow_id,
            status=str(RunStatus.RECEIVED), trigger_type=trigger_type, trigger_ref=trigger_ref,
            started_by=actor, version=1, last_seq=0, exception=exception, state={},
            sla_deadline=datetime.fromisoformat(deadline) if deadline else None,
            pause_expires_at=None, created_at=now, updated_at=now,
        )
        t = Transition(run, now, request_id)
        t.emit("run.received", actor, {"trigger_type": trigger_type, "exception": exception})
        for topic, payload in extra_events:
            t.emit(topic, actor, payload)
        if self.triage_advisor is not None:
            await self._advised_triage(t)
        claimed = self._chain(t)
        write = t.write(is_new=True)
        write.idempotency = idempotency_for(write.run) if idempotency_for else None
        if ingested:
            write.ingested = IngestedItem(tenant_id, ingested[0], ingested[1], run.id, now)
        await self.committer.submit(write)
        self._after_commit(write.run, claimed)
        return write.run

    async def _advised_triage(self, t: Transition) -> None:
        """Triage with the model's help where the rules are weak, before the run's first write:
        the model is asked outside any transaction, and a crash meanwhile leaves nothing behind."""
        playbooks = self.catalog.playbooks.values()
        result = triage(t.run.exception, self.catalog.triage, playbooks, t.now)
        if self.triage_advisor is not None and self.triage_advisor.wants(result):
            result = await self.triage_advisor.refine(t.run.exception, result, playbooks, t.now)
        record_triage(t, result)

    async def resume(
        self,
        tenant_id: str,
        workflow_id: str,
        run_id: str,
        payload: dict[str, Any],
        *,
        actor: str,
        decider: Decider | None = None,
        request_id: str | None = None,
        idempotency_for: Callable[[RunRecord], IdempotentResponse | None] | None = None,
    ) -> RunRecord:
        """Apply a decision to a paused run. A payload that does not fit the gate's schema raises
        ``ValidationFailed`` and leaves the pause untouched; so does a decider the gate does not
        accept (``Forbidden``). Without a ``decider`` the caller is trusted (the engine's own)."""
        who = decider or Decider(actor, trusted=True)

        def change(t: Transition) -> None:
            if t.run.workflow_id != workflow_id:
                raise RunNotFound(f"no run {run_id} in workflow {workflow_id}")
            if t.status != RunStatus.PAUSED:
                raise RunNotPaused(f"run {run_id} is {t.status}, not paused", {"status": t.status})
            check_payload(t.state["pause"]["payload_schema"], payload)
            check_decider(t.state["pause"], t.run.started_by, who, payload["decision"])
            apply_decision(t, payload, who.actor)

        run, _ = await self.change_run(tenant_id, run_id, change, request_id, idempotency_for)
        return run

    async def complete_step(
        self,
        tenant_id: str,
        run_id: str,
        step_id: str,
        completion: StepCompletion,
        *,
        request_id: str | None = None,
        idempotency_for: Callable[[RunRecord], IdempotentResponse | None] | None = None,
    ) -> RunRecord:
        """Complete a waiting step and let the run go on, in one write."""

        def change(t: Transition) -> bool:
            key = t.state.get("policy", {}).get("playbook")
            playbook = self.catalog.playbook(key) if key else None
            if playbook is None:
                raise StepNotFound(f"Step {step_id} not found in run {run_id}")
            complete_step(t, playbook, step_id, completion)
            return True

        run, _ = await self.change_run(tenant_id, run_id, change, request_id, idempotency_for)
        return run

    async def recalculate(
        self, tenant_id: str, run_id: str, *, actor: str, request_id: str | None = None
    ) -> tuple[RunRecord, dict[str, Any]]:
        """Re-run playbook matching; write only when the assignment changes."""

        def change(t: Transition) -> dict[str, Any]:
            return recalculate(t, self.catalog, actor)

        return await self.change_run(tenant_id, run_id, change, request_id, None, write_if=lambda o: o["changed"])

    async def run_next_step(
        self, tenant_id: str, run_id: str, *, execute: bool, request_id: str | None = None
    ) -> tuple[RunRecord, RunRecord]:
        """Advance an active run now (or, with ``execute=False``, only look); return the run
        before and after. Raises ``LoopConflict`` while something else advances it."""
        before = await self.runs.get(tenant_id, run_id)
        if before is None:
            raise RunNotFound(f"no run {run_id}")
        if not execute or before.status not in STAGES:
            return before, before
        if run_id in self._advancing:
            raise LoopConflict(f"run {run_id} is already being advanced")
        self._advancing.add(run_id)
        try:
            try:
                after, _ = await self.change_run(tenant_id, run_id, lambda t: None, request_id, None)
            except RunChanged as exc:
                raise LoopConflict(f"run {run_id} changed while advancing; try again") from exc
            return before, after
        finally:
            self._advancing.discard(run_id)

    async def change_run(
        self,
        tenant_id: str,
        run_id: str,
        change: Callable[[Transition], T],
        request_id: str | None,
        idempotency_for: Callable[[RunRecord], IdempotentResponse | None] | None,
        write_if: Callable[[T], bool] = lambda _: True,
    ) -> tuple[RunRecord, T]:
        """Read the run, apply ``change`` and the stages it makes possible, and commit it as one
        write (``change`` raises to refuse; ``write_if`` may decide nothing needs writing). A
        change that loses a race with another writer is tried again on the run as it now is, so
        its checks see the current state."""
        for _ in range(3):
            run = await self.runs.get(tenant_id, run_id)
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            t = Transition(run, self.clock(), request_id)
            outcome = change(t)
            if not write_if(outcome):
                return run, outcome
            claimed = self._chain(t)
            write = t.write()
            write.idempotency = idempotency_for(write.run) if idempotency_for else None
            try:
                await self.committer.submit(write)
            except WriteConflict:
                continue
            self._after_commit(write.run, claimed)
            return write.run, outcome
        raise RunChanged(f"run {run_id} kept changing; try again")

    def _after_commit(self, run: RunRecord, claimed: set[str]) -> None:
        """A committed run that still has work goes to a worker; the calls this write claimed
        are this process's to make (a claim found any other way was left by a crash)."""
        for step_id in claimed:
            self._claims.add((run.id, step_id))
        if run.status in STAGES:
            self._queue.put_nowait(run)

    async def _make_calls(self, run: RunRecord, t: Transition) -> None:
        """Make the run's claimed tool calls and record their results on ``t``. A claim this
        process did not make was left by one that stopped mid-call: the call is made again
        only if the tool is idempotent; otherwise its outcome is unknown and the step fails."""
        playbook = self.catalog.playbook(run.state["policy"]["playbook"])
        for step_id in list(run.state["pending_calls"]):
            record = run.state["steps"][step_id]
            tool = self.catalog.tools.get(record["tool"])
            ours = (run.id, step_id) in self._claims
            self._claims.discard((run.id, step_id))
            if not ours and not (tool and tool.idempotent):
                error = "the service stopped during this call; its outcome is unknown, so it was not repeated"
                record_call(t, playbook, step_id, None, error, 1)
                continue
            try:
                answer, attempts = await self.tools.call(
                    record["tool"], record["input"], idempotency_key=f"{run.id}:{step_id}"
                )
            except ToolFailed as exc:
                t.now = self.clock()
                record_call(t, playbook, step_id, None, str(exc), exc.attempts)
            else:
                t.now = self.clock()
                record_call(t, playbook, step_id, answer, None, attempts)

    async def _work(self) -> None:
        while True:
            run = await self._queue.get()
            try:
                await self._advance(run)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("advancing a run failed; it is picked up again on restart", run_id=run.id)
            finally:
                self._queue.task_done()

    def _chain(self, t: Transition) -> set[str]:
        """Run the run's local stages one after another in memory, until it waits, ends, or has
        tool calls to make. They are pure, so if the write that follows never commits, nothing
        happened; the calls are made only once the claim on them is committed. Returns the
        tool calls this chain claimed (this process's to make once the write commits)."""
        before = set(t.state.get("pending_calls", []))
        while t.status in STAGES and not t.state.get("pending_calls"):
            stage = STAGES[t.status]
            try:
                stage(t, self.catalog)
            except Exception as exc:
                log.exception("stage crashed", run_id=t.run.id, stage=stage.__name__)
                fail(t, f"{stage.__name__} crashed: {exc!r}", "system")
        return set(t.state.get("pending_calls", [])) - before

    async def _advance(self, run: RunRecord) -> None:
        """A worker's turn: advance a recovered or queued run and commit it as one write."""
        if run.id in self._advancing:  # someone is advancing it right now: look again shortly
            await asyncio.sleep(0.01)
            self._queue.put_nowait(run)
            return
        self._advancing.add(run.id)
        try:
            fresh = await self.runs.get(run.tenant_id, run.id)
            if fresh is None or fresh.status not in STAGES:
                return
            run = fresh  # queued work is a snapshot; act on the run as it is now
            transition = Transition(run, self.clock())
            if run.state.get("pending_calls"):
                await self._make_calls(run, transition)
            claimed = self._chain(transition)
            write = transition.write()
            if await self._commit(write):
                self._after_commit(write.run, claimed)
        finally:
            self._advancing.discard(run.id)

    async def _commit(self, write: RunWrite) -> bool:
        """Commit a worker's write, retrying a failing database; a run left behind is picked
        up on the next start, and the version check keeps a retried write from landing twice."""
        for attempt in range(COMMIT_RETRIES):
            try:
                await self.committer.submit(write)
                return True
            except WriteConflict:
                log.warning("run changed elsewhere; leaving it", run_id=write.run.id)
                return False
            except RuntimeError:
                raise
            except Exception as exc:
                log.warning("commit failed; retrying", run_id=write.run.id, attempt=attempt, error=str(exc))
                await asyncio.sleep(0.05 * 2**attempt)
        log.error("giving up on a commit; the run resumes on restart", run_id=write.run.id)
        return False
