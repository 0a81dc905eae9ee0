"""Reading runs. Every method but the recovery scan takes the tenant first, and filters on it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.state_codec import state_from_builtins
from store.records import RunRecord
from store.run_summaries import (
    PENDING_COLUMNS,
    SUMMARY_COLUMNS,
    PendingRow,
    RunSummaryRow,
    pending_from_row,
    summary_from_row,
)
from store.sqlite_threads import in_connection
from store.tables import runs

_one_run = select(runs).where(runs.c.tenant_id == bindparam("tenant_id"), runs.c.id == bindparam("run_id"))
"""Built once: a resume reads its run on the hot path, and building the query cost more than running it."""


def run_from_row(row: Any) -> RunRecord:
    """A row as a record; its JSON state becomes the typed ``RunState`` (upgraded if an older
    release wrote it), here and nowhere else."""
    values = {c.name: row._mapping[c.name] for c in runs.columns}
    values["state"] = state_from_builtins(values["state"])
    return RunRecord(**values)


class RunFilters(TypedDict, total=False):
    """What the runs list may be narrowed by; ``before_id`` is the cursor (run ids sort by creation)."""

    statuses: Sequence[str]
    workflow_id: str | None
    trigger_ref: str | None
    created_after: datetime | None
    created_before: datetime | None
    before_id: str | None


def _listed(query: Select[Any], tenant_id: str, limit: int, filters: RunFilters) -> Select[Any]:
    """``query`` over the tenant's runs narrowed by ``filters``, newest first."""
    query = query.where(runs.c.tenant_id == tenant_id)
    if statuses := filters.get("statuses"):
        query = query.where(runs.c.status.in_(statuses))
    if workflow_id := filters.get("workflow_id"):
        query = query.where(runs.c.workflow_id == workflow_id)
    if trigger_ref := filters.get("trigger_ref"):
        query = query.where(runs.c.trigger_ref == trigger_ref)
    if created_after := filters.get("created_after"):
        query = query.where(runs.c.created_at >= created_after)
    if created_before := filters.get("created_before"):
        query = query.where(runs.c.created_at < created_before)
    if before_id := filters.get("before_id"):
        query = query.where(runs.c.id < before_id)
    return query.order_by(runs.c.id.desc()).limit(limit)


class RunRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant_id: str, run_id: str) -> RunRecord | None:
        def read(conn: Connection) -> RunRecord | None:
            row = conn.execute(_one_run, {"tenant_id": tenant_id, "run_id": run_id}).first()
            return run_from_row(row) if row else None

        return await in_connection(self._engine, read)

    async def list_for(self, tenant_id: str, *, limit: int = 50, **filters: Unpack[RunFilters]) -> list[RunRecord]:
        """The tenant's runs, newest first."""
        query = _listed(select(runs), tenant_id, limit, filters)
        async with self._engine.connect() as conn:
            return [run_from_row(row) for row in await conn.execute(query)]

    async def summaries_for(
        self, tenant_id: str, *, limit: int = 50, **filters: Unpack[RunFilters]
    ) -> list[RunSummaryRow]:
        """What ``list_for`` finds, as summary rows (``store/run_summaries.py``)."""
        query = _listed(select(*SUMMARY_COLUMNS), tenant_id, limit, filters)
        return await in_connection(self._engine, lambda conn: [summary_from_row(row) for row in conn.execute(query)])

    async def pending_for(self, tenant_id: str, *, limit: int = 100, before_id: str | None = None) -> list[PendingRow]:
        """The tenant's paused runs, newest first, as the approvals inbox shows them."""
        query = _listed(select(*PENDING_COLUMNS), tenant_id, limit, {"statuses": ["paused"], "before_id": before_id})
        return await in_connection(self._engine, lambda conn: [pending_from_row(row) for row in conn.execute(query)])

    async def counts_by_workflow(self, tenant_id: str) -> dict[str, dict[str, int]]:
        query = (
            select(runs.c.workflow_id, runs.c.status, func.count())
            .where(runs.c.tenant_id == tenant_id)
            .group_by(runs.c.workflow_id, runs.c.status)
        )
        counts: dict[str, dict[str, int]] = {}
        async with self._engine.connect() as conn:
            for workflow_id, status, n in await conn.execute(query):
                counts.setdefault(workflow_id, {})[status] = n
        return counts

    async def latest_per_workflow(self, tenant_id: str) -> dict[str, RunRecord]:
        newest = (
            select(func.max(runs.c.id))
            .where(runs.c.tenant_id == tenant_id)
            .group_by(runs.c.workflow_id)
            .scalar_subquery()
        )
        query = select(runs).where(runs.c.tenant_id == tenant_id, runs.c.id.in_(newest))
        async with self._engine.connect() as conn:
            return {row.workflow_id: run_from_row(row) for row in await conn.execute(query)}

    async def sla_due(
        self, tenant_id: str, statuses: Sequence[str], deadline_before: datetime, now: datetime, *, limit: int = 500
    ) -> list[RunRecord]:
        """Open runs whose SLA deadline falls before ``deadline_before``, most urgent first,
        without those already marked for the level they are at (``state.sla.level``): breached,
        or at risk and not yet past ``now``. A breached run stays open as long as it waits, so
        those would otherwise fill ``limit`` and keep newer ones from ever being marked."""
        level = func.coalesce(runs.c.state[("sla", "level")].as_string(), "")
        query = (
            select(runs)
            .where(runs.c.tenant_id == tenant_id, runs.c.status.in_(statuses))
            .where(runs.c.sla_deadline.is_not(None), runs.c.sla_deadline < deadline_before)
            .where(level != "breached", or_(level != "at_risk", runs.c.sla_deadline <= now))
            .order_by(runs.c.sla_deadline, runs.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [run_from_row(row) for row in await conn.execute(query)]

    async def expired_pauses(self, tenant_id: str, now: datetime, *, limit: int = 500) -> list[RunRecord]:
        """Paused runs whose approval expired at or before ``now``, oldest expiry first."""
        query = (
            select(runs)
            .where(runs.c.tenant_id == tenant_id, runs.c.status == "paused")
            .where(runs.c.pause_expires_at.is_not(None), runs.c.pause_expires_at <= now)
            .order_by(runs.c.pause_expires_at, runs.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [run_from_row(row) for row in await conn.execute(query)]

    async def unfinished(self, statuses: Sequence[str]) -> list[RunRecord]:
        """System-wide recovery scan: the runs a restart must pick up again, oldest first."""
        query = select(runs).where(runs.c.status.in_(statuses)).order_by(runs.c.id)
        async with self._engine.connect() as conn:
            return [run_from_row(row) for row in await conn.execute(query)]
