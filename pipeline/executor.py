"""This process as the database knows it: an executor id, a heartbeat, and a sweep that takes
over the runs of processes that died.

Each process registers a row at start and beats every ``heartbeat`` seconds. Every beat also
sweeps: runs in the statuses a claimant asked for whose owner stopped beating more than
``lease`` ago are claimed in batches (``store.executors``) and handed to that claimant (the
engine's workers, the job runner). So a SIGKILLed process's work moves within
lease + heartbeat seconds, and a process that is merely slow keeps it. The first sweep, at
start, is the recovery of what a stop or crash left behind. On SQLite only one process can
serve the file (``store.sole_process``), so at start every other executor is known dead and its
runs are taken at once."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.clock import Clock, IdFactory
from store.executors import ExecutorRecord, ExecutorRepository
from store.records import RunRecord

log = structlog.get_logger(__name__)

CLAIM_BATCH = 500


class Executor:
    def __init__(
        self, db: AsyncEngine, clock: Clock, ids: IdFactory, *, lease: float = 10.0, heartbeat: float = 2.5
    ) -> None:
        if heartbeat * 2 > lease:
            raise ValueError(f"the heartbeat ({heartbeat} s) must be at most half the lease ({lease} s)")
        self.id = ids("exe")
        self.repo = ExecutorRepository(db)
        self.clock = clock
        self.lease, self.heartbeat = timedelta(seconds=lease), heartbeat
        self._sole = db.dialect.name == "sqlite"
        self._takers: dict[str, Callable[[RunRecord], None]] = {}
        """Who an orphaned run in each status goes to (the engine's workers, the job runner)."""
        self._task: asyncio.Task[None] | None = None
        self.taken_over = 0
        """Runs this process claimed from dead ones since it started (for metrics)."""
        self._beaten = time.monotonic()

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the last heartbeat was written (for metrics: near the lease means trouble)."""
        return time.monotonic() - self._beaten

    def adopt(self, statuses: Sequence[str], take: Callable[[RunRecord], None]) -> None:
        """Hand orphaned runs in ``statuses`` to ``take`` from the next sweep on."""
        self._takers.update(dict.fromkeys(statuses, take))

    async def start(self) -> None:
        """Register, forget the processes that can no longer be alive, and beat from now on."""
        await self.repo.register(self._record(self.clock()))
        if self._sole:
            await self.repo.forget(keep=self.id)
        self._task = asyncio.create_task(self._beat_forever(), name="executor-heartbeat")
        log.info("executor started", executor_id=self.id)

    async def stop(self) -> None:
        """Stop beating and retire: what this process still owned is free for others at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            await self.repo.retire(self.id)

    def _record(self, now: datetime) -> ExecutorRecord:
        return ExecutorRecord(self.id, socket.gethostname()[:255], os.getpid(), now, now)

    async def sweep(self) -> int:
        """Beat, then claim orphaned runs in the adopted statuses, a batch at a time until none is
        left, and hand each to its taker; return how many were taken."""
        now = self.clock()
        beaten = time.monotonic()
        if not await self.repo.beat(self.id, now):  # declared dead while alive (a long stall): come back
            await self.repo.register(self._record(now))
            log.warning("executor row was gone; registered again", executor_id=self.id)
        self._beaten = beaten
        dead_before = now - self.lease
        taken = 0
        while self._takers:
            runs = await self.repo.claim_orphans(
                self.id, list(self._takers), dead_before=dead_before, limit=CLAIM_BATCH
            )
            for run in runs:
                self._takers[run.status](run)
            taken += len(runs)
            if len(runs) < CLAIM_BATCH:
                break
        await self.repo.forget(dead_before=dead_before - self.lease)
        if taken:
            self.taken_over += taken
            log.info("took over runs", executor_id=self.id, count=taken)
        return taken

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment; the next beat tries again
                log.exception("heartbeat failed", executor_id=self.id)
