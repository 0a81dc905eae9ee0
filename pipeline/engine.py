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
from agents.tool_client import ToolClient
from agents.triage import triage
from config.catalog import Catalog
from domain.errors import LoopConflict, RunChanged, RunNotFound, RunNotPaused, StepNotFound
from domain.run_state import new_state
from domain.statuses import RunStatus
from eventbus import EventBus
from pipeline.clock import Clock, IdFactory, utc_now
from pipeline.committer import GroupCommitter
from pipeline.conflicts import retry_on_conflict
from pipeline.executor import Executor
from pipeline.hitl import Decider, apply_decision, check_decider, check_payload
from pipeline.outcomes import fail
from pipeline.recalculation import Recalculation, recalculate
from pipeline.stages import STAGES, record_triage
from pipeline.start_request import IdempotencySpec, StartRequest, open_run
from pipeline.step_completion import StepCompletion, complete_step
from pipeline.tool_calls import ToolCalls
from pipeline.transition import Transition
from store.outbox import DEFAULT_OUTBOX, OutboxPolicy
from store.records import IngestedItem, RunRecord, RunWrite
from store.runs import RunRepository
from store.writer import WriteConflict

log = structlog.get_logger(__name__)

COMMIT_RETRIES = 5
T = TypeVar("T")


class PipelineEngine:
    """Implements ``pipeline.run_writer.RunWriter``: what job workflows and the launcher use."""

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
        executor: Executor | None = None,
        outbox: OutboxPolicy = DEFAULT_OUTBOX,
    ) -> None:
        self.catalog = catalog
        self.triage_advisor = triage_advisor
        """Asks the model when triage's rules are weak; None (the default) keeps triage on rules alone."""
        self.db = db
        self.runs = RunRepository(db)
        self.committer = GroupCommitter(db, bus, max_batch=max_batch, outbox=outbox)
        self.clock = clock
        self.ids = ids or IdFactory()
        self._worker_count = workers
        self._queue: asyncio.Queue[RunRecord] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self.calls = ToolCalls(catalog, ToolClient(catalog.tools), clock)
        self._advancing: set[str] = set()
        """Runs a worker or a run-next-step call of this process is advancing right now."""
        self.executor = executor or Executor(db, clock, self.ids)
        """This process in the database: every run it writes becomes its own to advance."""
        self.executor.adopt([str(s) for s in STAGES], self._take_over)
        self._taken_queued = 0
        """Runs queued after claiming them from a stopped or dead process (or from before a restart)."""

    async def start(self) -> int:
        """Start committing and advancing, and take over the unfinished runs no live process owns
        (what a stop or a crash left behind); return how many of those were queued."""
        self.committer.start()
        self._workers = [
            asyncio.create_task(self._work(), name=f"pipeline-worker-{i}")
            for i in range(self._worker_count)
        ]
        await self.executor.start()
        queued = self._taken_queued
        await self.executor.sweep()
        recovered = self._taken_queued - queued
        if recovered:
            log.info("recovered unfinished runs", count=recovered)
        return recovered

    def _take_over(self, run: RunRecord) -> None:
        """A run claimed from a process that died (or from before a restart) goes to a worker."""
        if self._wants_worker(run):
            self._taken_queued += 1
            self._queue.put_nowait(run)

    async def stop(self) -> None:
        """Stop advancing. A transition already submitted still commits; the rest of a run's
        stages are picked up from the store on the next start."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        await self.committer.stop()
        await self.executor.stop()
        await self.calls.close()
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

    async def start_run(self, request: StartRequest) -> RunRecord:
        """Record a new run and advance it through its local stages, durably in one write.

        Returns once that write is committed: the run has then paused, is waiting, or has
        ended (or, when a stage must act outside, is queued for a worker). If the request's
        ingested item already has a run, nothing is written and ``WriteConflict`` is raised."""
        now = self.clock()
        deadline = request.payload.get("sla_deadline")
        t = open_run(
            request, request.run_id or self.new_run_id(), now, status=RunStatus.RECEIVED,
            state=new_state(requested_playbook=request.playbook),
            received={"exception": request.payload},
            sla_deadline=datetime.fromisoformat(deadline) if deadline else None,
        )
        if self.triage_advisor is not None:
            await self._advised_triage(t)
        write, claimed = self._chained_write(t, request.idempotency, is_new=True)
        if request.ingested:
            write.ingested = IngestedItem(request.tenant_id, *request.ingested, write.run.id, now)
        await self.submit(write, claimed)
        return write.run

    async def submit(self, write: RunWrite, claimed: frozenset[str] = frozenset()) -> None:
        """Commit ``write``, which makes the run this process's own; then a run with work left
        goes to a worker, and the tool calls the write ``claimed`` are this process's to make (a
        claim found any other way was left by a process that died)."""
        write.run.executor_id = self.executor.id
        await self.committer.submit(write)
        self.calls.claimed(write.run.id, claimed)
        if self._wants_worker(write.run):
            self._queue.put_nowait(write.run)

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
        idempotency: IdempotencySpec | None = None,
    ) -> RunRecord:
        """Apply a decision to a paused run. A payload that does not fit the gate's schema raises
        ``ValidationFailed`` and leaves the pause untouched; so does a decider the gate does not
        accept (``Forbidden``). Without a ``decider`` the caller is trusted (the engine's own)."""
        who = decider or Decider(actor, trusted=True)

        def change(t: Transition) -> None:
            if t.run.workflow_id != workflow_id:
                raise RunNotFound(f"no run {run_id} in workflow {workflow_id}")
            pause = t.state.pause
            if t.status != RunStatus.PAUSED or pause is None:
                raise RunNotPaused(f"run {run_id} is {t.status}, not paused", {"status": t.status})
            check_payload(pause.payload_schema, payload)
            check_decider(pause, t.run.started_by, who, payload["decision"])
            apply_decision(t, payload, who.actor)

        run, _ = await self.change_run(tenant_id, run_id, change, request_id=request_id, idempotency=idempotency)
        return run

    async def complete_step(
        self,
        tenant_id: str,
        run_id: str,
        step_id: str,
        completion: StepCompletion,
        *,
        request_id: str | None = None,
        idempotency: IdempotencySpec | None = None,
    ) -> RunRecord:
        """Complete a waiting step and let the run go on, in one write."""

        def change(t: Transition) -> None:
            playbook = self.catalog.playbook(t.state.playbook_key or "")
            if playbook is None:
                raise StepNotFound(f"Step {step_id} not found in run {run_id}")
            complete_step(t, playbook, step_id, completion)

        run, _ = await self.change_run(tenant_id, run_id, change, request_id=request_id, idempotency=idempotency)
        return run

    async def recalculate(
        self, tenant_id: str, run_id: str, *, actor: str, request_id: str | None = None
    ) -> tuple[RunRecord, Recalculation]:
        """Re-run playbook matching; write only when the assignment changes."""
        return await self.change_run(
            tenant_id, run_id, lambda t: recalculate(t, self.catalog, actor), request_id=request_id,
            write_if=lambda outcome: outcome.changed,
        )

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
        if before.state.pending_calls:  # a worker, here or in another process, is making its calls
            raise LoopConflict(f"run {run_id} has a tool call in flight; try again when it is answered")

        def one_step(t: Transition) -> None:
            if t.run.version != before.version:  # another process advanced it since we looked
                raise LoopConflict(f"run {run_id} was advanced by another request; look again")
            _one_step(t)

        self._advancing.add(run_id)
        try:
            try:
                after, _ = await self.change_run(tenant_id, run_id, one_step, request_id=request_id)
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
        *,
        request_id: str | None = None,
        idempotency: IdempotencySpec | None = None,
        write_if: Callable[[T], bool] = lambda _: True,
    ) -> tuple[RunRecord, T]:
        """Read the run, apply ``change`` and the stages it makes possible, and commit it as one
        write (``change`` raises to refuse; ``write_if`` may decide nothing needs writing). A
        change that loses a race with another writer is tried again on the run as it now is."""

        async def attempt() -> tuple[RunRecord, T]:
            run = await self.runs.get(tenant_id, run_id)
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            t = Transition(run, self.clock(), request_id)
            outcome = change(t)
            if not write_if(outcome):
                return run, outcome
            write, claimed = self._chained_write(t, idempotency)
            await self.submit(write, claimed)
            return write.run, outcome

        return await retry_on_conflict(attempt, run_id)

    def _chained_write(
        self, t: Transition, idempotency: IdempotencySpec | None, *, is_new: bool = False
    ) -> tuple[RunWrite, frozenset[str]]:
        """Run the run's local stages one after another in memory, until it waits, ends, or has
        tool calls to make, and turn the result into one write; also return the tool calls the
        chain claimed. The stages are pure, so if the write never commits, nothing happened;
        calls are made only once their claim commits."""
        before = set(t.state.pending_calls)
        while t.status in STAGES and not t.state.pending_calls and not t.state.awaiting_next_step:
            stage = STAGES[t.status]
            try:
                stage(t, self.catalog)
            except Exception as exc:
                log.exception("stage crashed", run_id=t.run.id, stage=stage.__name__)
                fail(t, f"{stage.__name__} crashed: {exc!r}", "system")
        write = t.write(is_new=is_new)
        if idempotency is not None:
            write.idempotency = idempotency.response_for(write.run, t.now)
        return write, frozenset(set(t.state.pending_calls) - before)

    @staticmethod
    def _wants_worker(run: RunRecord) -> bool:
        """A run in a status with a stage goes on by itself, unless it advances one step at a
        time and its next step waits for a run-next-step call."""
        return run.status in STAGES and not run.state.awaiting_next_step

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

    async def _advance(self, run: RunRecord) -> None:
        """A worker's turn: advance a recovered or queued run and commit it as one write."""
        if run.id in self._advancing:  # someone is advancing it right now: look again shortly
            await asyncio.sleep(0.01)
            self._queue.put_nowait(run)
            return
        self._advancing.add(run.id)
        try:
            fresh = await self.runs.get(run.tenant_id, run.id)
            if fresh is None or not self._wants_worker(fresh) or fresh.executor_id != self.executor.id:
                return  # ended, waiting, or another process wrote it since and advances it now
            transition = Transition(fresh, self.clock())  # queued work is a snapshot; act on the run as it is now
            if fresh.state.pending_calls:
                await self.calls.make(transition)
            await self._commit(*self._chained_write(transition, None))
        finally:
            self._advancing.discard(run.id)

    async def _commit(self, write: RunWrite, claimed: frozenset[str]) -> None:
        """Commit a worker's write, retrying a failing database; a run left behind is picked
        up on the next start, and the version check keeps a retried write from landing twice."""
        for attempt in range(COMMIT_RETRIES):
            try:
                await self.submit(write, claimed)
                return
            except WriteConflict:
                log.warning("run changed elsewhere; leaving it", run_id=write.run.id)
                return
            except RuntimeError:
                raise
            except Exception as exc:
                log.warning("commit failed; retrying", run_id=write.run.id, attempt=attempt, error=str(exc))
                await asyncio.sleep(0.05 * 2**attempt)
        log.error("giving up on a commit; the run resumes on restart", run_id=write.run.id)


def _one_step(t: Transition) -> None:
    """Run-next-step's change: a run that advances one step at a time may take its next step."""
    if t.state.awaiting_next_step:
        t.state.awaiting_next_step = False
        t.granted_steps = 1
