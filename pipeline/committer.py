"""Group commit: writes from many runs wait together and go to the store in one transaction;
their events are published on the bus only after that transaction commits (outbox order)."""

from __future__ import annotations

import asyncio
from collections import Counter

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from eventbus import EventBus
from store.outbox import DEFAULT_OUTBOX, OutboxPolicy
from store.records import EventRecord, RunWrite
from store.writer import write_batch

log = structlog.get_logger(__name__)


class GroupCommitter:
    def __init__(self, engine: AsyncEngine, bus: EventBus, *, max_batch: int = 1000,
                 outbox: OutboxPolicy = DEFAULT_OUTBOX) -> None:
        self._engine = engine
        self._bus = bus
        self._max_batch = max_batch
        self._outbox = outbox
        self._pending: list[tuple[RunWrite, asyncio.Future[list[EventRecord]]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.writes = 0
        self.events = 0
        self.statuses: Counter[str] = Counter()
        """How many committed writes left a run in each status (for metrics)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-committer")

    async def stop(self) -> None:
        """Commit whatever is already submitted, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def submit(self, write: RunWrite) -> list[EventRecord]:
        """Wait until ``write`` is durable; return its events with their global ids."""
        if self._closing or self._task is None or self._task.done():
            raise RuntimeError("the committer is not running")
        future: asyncio.Future[list[EventRecord]] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[tuple[RunWrite, asyncio.Future[list[EventRecord]]]]) -> None:
        try:
            outcomes = await write_batch(self._engine, [write for write, _ in batch], self._outbox)
        except Exception as exc:  # write_batch answers per write; this is its own failure
            log.error("group commit failed", writes=len(batch), error=str(exc))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.writes += len(batch)
        committed: list[EventRecord] = []
        for (write, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                if not future.done():
                    future.set_exception(outcome)
                continue
            committed.extend(outcome)
            self.statuses[write.run.status] += 1
            if not future.done():
                future.set_result(outcome)
        self.events += len(committed)
        try:
            self._bus.publish(committed)
        except Exception:  # a broken subscriber must not stop commits; the log has the events
            log.exception("publishing committed events failed", events=len(committed))
