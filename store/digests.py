"""Reading finished runs for a digest: only the columns and state parts it needs, a chunk at a
time by id, so a window with 100k runs never sits in memory as full runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.tables import runs


@dataclass(frozen=True, slots=True)
class FinishedRun:
    id: str
    workflow_id: str
    status: str
    feedback: dict[str, Any] | None
    error: str | None


_columns = (
    runs.c.id, runs.c.workflow_id, runs.c.status,
    runs.c.state["feedback"].label("feedback"), runs.c.state["error"].label("error"),
)


async def finished_runs(
    engine: AsyncEngine, tenant_id: str, statuses: Sequence[str], start: datetime, end: datetime, *, chunk: int = 1000
) -> AsyncIterator[list[FinishedRun]]:
    """The tenant's runs in ``statuses`` last changed in [start, end), in id order, ``chunk`` at
    a time. Each chunk is its own short read, so no transaction stays open across the scan."""
    after = ""
    while True:
        query = (
            select(*_columns)
            .where(runs.c.tenant_id == tenant_id, runs.c.status.in_(statuses), runs.c.id > after)
            .where(runs.c.updated_at >= start, runs.c.updated_at < end)
            .order_by(runs.c.id)
            .limit(chunk)
        )
        async with engine.connect() as conn:
            rows = [
                FinishedRun(r.id, r.workflow_id, r.status, r.feedback, r.error if isinstance(r.error, str) else None)
                for r in await conn.execute(query)
            ]
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = rows[-1].id
