"""Job workflows (an SLA sweep, an ingest, a feedback digest) run as runs of their own: recorded
``running`` before they act, then ``completed`` with their summary or ``failed`` with the reason.
What they do to other runs is written on those runs, each change in its own version-checked
write; the job's own run gets one event per action and the summary when it ends.

A job left ``running`` by a stop is run again on the next start. Jobs are written so that a
second pass over the same input does nothing new (a swept run is not swept twice, an ingested
item is not ingested twice, a digest over a fixed window is the same digest)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from domain.run_state import new_state
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.clock import Clock
from pipeline.executor import Executor
from pipeline.run_writer import RunWriter
from pipeline.start_request import StartRequest, open_run
from pipeline.transition import Transition
from store.records import RunRecord

log = structlog.get_logger(__name__)

MAX_ACTION_EVENTS = 1000
"""A job's own run keeps at most this many action events; the summary still counts them all."""


@dataclass
class JobContext:
    """What a job is given: its run, its checked parameters, and the services it may use."""

    run: RunRecord
    params: Any
    writer: RunWriter
    db: AsyncEngine
    """For the job's own reads (an ingest's seen items, a digest's window)."""
    catalog: Catalog
    clock: Clock
    data_dir: Path
    actions: list[tuple[Topic, dict[str, Any]]] = field(default_factory=list)
    dropped_actions: int = 0

    @property
    def actor(self) -> str:
        return f"workflow:{self.run.workflow_id}"

    def record(self, topic: Topic, payload: dict[str, Any]) -> None:
        """An action this job took, for its own run's timeline."""
        if len(self.actions) < MAX_ACTION_EVENTS:
            self.actions.append((topic, payload))
        else:
            self.dropped_actions += 1


Job = Callable[[JobContext], Awaitable[dict[str, Any]]]
"""Does the work and returns the summary that ``workflow.completed`` carries."""


@dataclass(frozen=True)
class JobKind:
    params: type[BaseModel]
    run: Job


class JobRunner:
    def __init__(
        self, writer: RunWriter, db: AsyncEngine, catalog: Catalog, kinds: dict[str, JobKind], *, data_dir: Path,
        clock: Clock, executor: Executor,
    ) -> None:
        self.writer, self.db, self.catalog, self.kinds = writer, db, catalog, kinds
        self.data_dir, self.clock, self.executor = data_dir, clock, executor
        self._tasks: dict[str, asyncio.Task[RunRecord]] = {}

    async def start(self) -> int:
        """Run again the jobs no live process runs (a stop or a crash left them ``running``), now
        and whenever their process dies later; return how many were taken now."""
        before = len(self._tasks)
        self.executor.adopt([str(RunStatus.RUNNING)], self._take_over)
        await self.executor.sweep()
        taken = len(self._tasks) - before
        if taken:
            log.info("re-running interrupted jobs", count=taken)
        return taken

    def _take_over(self, run: RunRecord) -> None:
        if run.id not in self._tasks:
            self._spawn(run)

    async def stop(self) -> None:
        """Cancel running jobs; their runs stay ``running`` and run again on the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def launch(self, request: StartRequest, kind: str) -> RunRecord:
        """Record the job's run as ``running`` (committed before it acts) and start it."""
        now = self.clock()
        t = open_run(
            request, request.run_id or self.writer.new_run_id(), now, status=RunStatus.RUNNING,
            state=new_state(job=kind), received={"trigger_ref": request.trigger_ref, "params": request.payload},
        )
        write = t.write(is_new=True)
        if request.idempotency is not None:
            write.idempotency = request.idempotency.response_for(write.run, now)
        await self.writer.submit(write)
        self._spawn(write.run)
        return write.run

    async def wait(self, run_id: str) -> RunRecord | None:
        """The job's run once it has ended (``None`` if this process is not running it)."""
        task = self._tasks.get(run_id)
        return await asyncio.shield(task) if task else None

    @property
    def running(self) -> int:
        return len(self._tasks)

    def _spawn(self, run: RunRecord) -> None:
        task = asyncio.create_task(self._execute(run), name=f"job-{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    async def _execute(self, run: RunRecord) -> RunRecord:
        kind = self.kinds.get(run.state.job or "")
        ctx = JobContext(run, None, self.writer, self.db, self.catalog, self.clock, self.data_dir)
        summary: dict[str, Any] | None = None
        error: str | None = None
        if kind is None:
            error = f"no job of kind {run.state.job!r} in this version"
        else:
            try:
                ctx.params = kind.params.model_validate(run.exception)
                summary = await kind.run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("job failed", run_id=run.id, workflow_id=run.workflow_id)
                error = f"{type(exc).__name__}: {exc}"
        return await self._finish(run, ctx, summary, error)

    async def _finish(
        self, run: RunRecord, ctx: JobContext, summary: dict[str, Any] | None, error: str | None
    ) -> RunRecord:
        def close(t: Transition) -> bool:
            if t.status != RunStatus.RUNNING or t.run.executor_id != self.executor.id:
                return False  # taken over while this process stalled past its lease: the new owner closes it
            for topic, payload in ctx.actions:
                t.emit(topic, ctx.actor, payload)
            if error is None:
                t.status = RunStatus.COMPLETED
                t.state.summary = {**(summary or {}), "actions_not_logged": ctx.dropped_actions}
                t.emit(Topic.WORKFLOW_COMPLETED, ctx.actor, t.state.summary)
            else:
                t.status = RunStatus.FAILED
                t.state.error = error
                t.emit(Topic.RUN_FAILED, ctx.actor, {"error": error})
            return True

        closed, _ = await self.writer.change_run(run.tenant_id, run.id, close, write_if=bool)
        return closed
