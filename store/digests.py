"""Reading finished runs for a digest: only the columns and state parts it needs, a chunk at a
time by id, so a window with 100k runs never sits in memory as full runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.run_state import Feedback
from domain.state_codec import upcast
from store.tables import runs


@dataclass(frozen=True, slots=True)
class FinishedRun:
    id: str
    workflow_id: str
    status: str
    feedback: Feedback | None
    """``None`` for a job's run, which Feedback never sees."""
    error: str | None


_columns = (
    runs.c.id, runs.c.workflow_id, runs.c.status,
    runs.c.state["feedback"].label("feedback"), runs.c.state["error"].label("error"),
    runs.c.state["schema_version"].label("schema_version"),
)


def _feedback(document: Any, schema_version: Any) -> Feedback | None:
    """Feedback's record, upgraded like the whole state would be if an older release wrote it."""
    if not isinstance(document, dict):
        return None
    stored = {"feedback": document, **({"schema_version": schema_version} if schema_version else {})}
    return msgspec.convert(upcast(stored)["feedback"], Feedback)


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
                FinishedRun(r.id, r.workflow_id, r.status, _feedback(r.feedback, r.schema_version),
                            r.error if isinstance(r.error, str) else None)
                for r in await conn.execute(query)
            ]
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = rows[-1].id
