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

from config.catalog import Catalog
from pipeline.clock import Clock
from pipeline.engine import PipelineEngine
from domain.statuses import RunStatus
from pipeline.transition import Transition
from store.records import IdempotentResponse, RunRecord
from store.writer import WriteConflict

log = structlog.get_logger(__name__)

MAX_ACTION_EVENTS = 1000
"""A job's own run keeps at most this many action events; the summary still counts them all."""


@dataclass
class JobContext:
    """What a job is given: its run, its checked parameters, and the services it may use."""

    run: RunRecord
    params: Any
    engine: PipelineEngine
    catalog: Catalog
    clock: Clock
    data_dir: Path
    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dropped_actions: int = 0

    @property
    def actor(self) -> str:
        return f"workflow:{self.run.workflow_id}"

    def record(self, topic: str, payload: dict[str, Any]) -> None:
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
        self, engine: PipelineEngine, catalog: Catalog, kinds: dict[str, JobKind], *, data_dir: Path,
        clock: Clock,
    ) -> None:
        self.engine, self.catalog, self.kinds = engine, catalog, kinds
        self.data_dir, self.clock = data_dir, clock
        self._tasks: dict[str, asyncio.Task[RunRecord]] = {}

    async def start(self) -> int:
        """Run again the jobs a stop left ``running``; return how many."""
        left = await self.engine.runs.unfinished([str(RunStatus.RUNNING)])
        for run in left:
            self._spawn(run)
        if left:
            log.info("re-running interrupted jobs", count=len(left))
        return len(left)

    async def stop(self) -> None:
        """Cancel running jobs; their runs stay ``running`` and run again on the next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def launch(
        self,
        tenant_id: str,
        workflow_id: str,
        kind: str,
        params: dict[str, Any],
        *,
        actor: str,
        trigger_type: str,
        trigger_ref: str | None = None,
        request_id: str | None = None,
        idempotency_for: Callable[[RunRecord], IdempotentResponse | None] | None = None,
        extra_events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
        run_id: str | None = None,
    ) -> RunRecord:
        """Record the job's run as ``running`` (committed before it acts) and start it."""
        now = self.clock()
        run = RunRecord(
            id=run_id or self.engine.new_run_id(), tenant_id=tenant_id, workflow_id=workflow_id,
            status=str(RunStatus.RUNNING), trigger_type=trigger_type, trigger_ref=trigger_ref,
            started_by=actor, version=1, last_seq=0, exception=params, state={"job": kind},
            sla_deadline=None, pause_expires_at=None, created_at=now, updated_at=now,
        )
        t = Transition(run, now, request_id)
        t.emit("run.received", actor, {"trigger_type": trigger_type, "trigger_ref": trigger_ref, "params": params})
        for topic, payload in extra_events:
            t.emit(topic, actor, payload)
        write = t.write(is_new=True)
        write.idempotency = idempotency_for(write.run) if idempotency_for else None
        await self.engine.committer.submit(write)
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
        kind = self.kinds.get(run.state.get("job", ""))
        ctx = JobContext(run, None, self.engine, self.catalog, self.clock, self.data_dir)
        summary: dict[str, Any] | None = None
        error: str | None = None
        if kind is None:
            error = f"no job of kind {run.state.get('job')!r} in this version"
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
        for _ in range(3):
            fresh = await self.engine.runs.get(run.tenant_id, run.id) or run
            t = Transition(fresh, self.clock())
            for topic, payload in ctx.actions:
                t.emit(topic, ctx.actor, payload)
            if error is None:
                t.status = RunStatus.COMPLETED
                t.state["summary"] = {**(summary or {}), "actions_not_logged": ctx.dropped_actions}
                t.emit("workflow.completed", ctx.actor, t.state["summary"])
            else:
                t.status = RunStatus.FAILED
                t.state["error"] = error
                t.emit("run.failed", ctx.actor, {"error": error})
            write = t.write()
            try:
                await self.engine.committer.submit(write)
            except WriteConflict:
                continue
            return write.run
        raise RuntimeError(f"job run {run.id} kept changing while it was being closed")
