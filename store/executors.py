"""The server processes sharing one database, as rows with a heartbeat, and the claiming of
runs whose owner stopped beating.

A run in an active status belongs to the process that last wrote it (``runs.executor_id``).
Another process takes it over only when that owner's heartbeat is older than the lease (or its
row is gone): a slow owner keeps its work, a dead one loses it within the lease. Claiming
bumps the run's version, which fences the old owner off: should it wake up after all, its
next write of the run conflicts and it leaves the run alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.records import RunRecord
from store.runs import run_from_row
from store.tables import executors, runs


@dataclass(frozen=True, slots=True)
class ExecutorRecord:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


class ExecutorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def register(self, executor: ExecutorRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(executors).values(
                id=executor.id, host=executor.host, pid=executor.pid,
                started_at=executor.started_at, heartbeat_at=executor.heartbeat_at,
            ))

    async def beat(self, executor_id: str, now: datetime) -> bool:
        """Record that the process is alive; False if its row is gone (it was declared dead)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(executors).where(executors.c.id == executor_id).values(heartbeat_at=now)
            )
        return result.rowcount == 1

    async def retire(self, executor_id: str) -> None:
        """A clean stop: the row goes, and with it the process's claim on its runs at once."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(executors).where(executors.c.id == executor_id))

    async def forget(self, *, dead_before: datetime | None = None, keep: str | None = None) -> int:
        """Delete the rows of processes that stopped beating before ``dead_before`` (all but
        ``keep`` when it is None: on SQLite only one process can be alive, so the others are dead)."""
        query = delete(executors)
        if dead_before is not None:
            query = query.where(executors.c.heartbeat_at < dead_before)
        if keep is not None:
            query = query.where(executors.c.id != keep)
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount

    async def claim_orphans(
        self, executor_id: str, statuses: Sequence[str], *, dead_before: datetime, limit: int
    ) -> list[RunRecord]:
        """Make up to ``limit`` orphaned runs in ``statuses`` this executor's (oldest first) and
        return them as they now are. An orphan's owner is unknown, gone, or stopped beating
        before ``dead_before``. On PostgreSQL, rows another process is claiming at the same
        moment are skipped (``FOR UPDATE SKIP LOCKED``), so processes never wait on each other
        and each run goes to one of them."""
        run = runs.alias("orphan")  # not correlated with the UPDATE's own ``runs``
        orphans = (
            select(run.c.id)
            .outerjoin(executors, executors.c.id == run.c.executor_id)
            .where(
                run.c.status.in_(statuses),
                run.c.executor_id.is_distinct_from(executor_id),
                or_(executors.c.id.is_(None), executors.c.heartbeat_at < dead_before),
            )
            .order_by(run.c.id)
            .limit(limit)
            .with_for_update(of=run, skip_locked=True)
        )
        claim = (
            update(runs)
            .where(runs.c.id.in_(orphans.scalar_subquery()))
            .values(executor_id=executor_id, version=runs.c.version + 1)
            .returning(*runs.c)
        )
        async with self._engine.begin() as conn:
            claimed = [run_from_row(row) for row in await conn.execute(claim)]
        return sorted(claimed, key=lambda run: run.id)
