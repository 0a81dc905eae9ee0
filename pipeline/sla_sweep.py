"""The SLA sweep job, for one tenant: acts on approvals whose expiry has passed (per the gate's
``on_expiry`` policy), then raises the severity of open runs whose SLA is near or past. Each run
is changed in its own version-checked write (``pipeline/escalation.py`` decides what, on the run
as it is then), so a run a human resumed meanwhile is left alone and a second sweep writes
nothing new."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import RunChanged, RunNotFound
from domain.statuses import TERMINAL, RunStatus
from pipeline.escalation import Outcome, expire_approval, mark_sla
from pipeline.jobs import JobContext
from pipeline.transition import Transition
from store.records import RunRecord

log = structlog.get_logger(__name__)

SWEPT_STATUSES = sorted(str(s) for s in RunStatus if s not in TERMINAL and s != RunStatus.RUNNING)
"""Open pipeline runs: waiting or active, but not ended, and not job runs (``running``)."""
CONCURRENCY = 16
"""Runs changed at once: enough for the group commit to batch them, few enough to stay polite."""
COUNTS = (
    "runs_checked", "at_risk", "breached", "expired_rejected", "expired_approved", "reassigned",
    "left_waiting", "unchanged", "skipped",
)


class SlaSweepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near_minutes: float = Field(30, ge=0, description="An SLA deadline this close is at risk")
    limit: int = Field(500, ge=1, le=10000, description="At most this many runs of each kind per sweep")


async def sla_sweep(ctx: JobContext) -> dict[str, Any]:
    params: SlaSweepParams = ctx.params
    tenant, now, sweep = ctx.run.tenant_id, ctx.clock(), ctx.run.id
    near = timedelta(minutes=params.near_minutes)
    runs = ctx.writer.runs
    expired = await runs.expired_pauses(tenant, now, limit=params.limit)
    due = await runs.sla_due(tenant, SWEPT_STATUSES, now + near, now, limit=params.limit)
    fallback = ctx.catalog.policies.for_tenant(tenant).gate.on_expiry

    # Expiries first: a run the expiry rejects or completes needs no SLA warning any more.
    expiries = await _each(expired, lambda run: _apply(
        ctx, run, lambda t: expire_approval(t, now, fallback, ctx.actor, sweep)))
    warnings = await _each(due, lambda run: _apply(
        ctx, run, lambda t: mark_sla(t, now, near, ctx.actor, sweep)))

    counts = dict.fromkeys(COUNTS, 0)
    acted: set[str] = set()
    for run, outcome in [*zip(expired, expiries, strict=True), *zip(due, warnings, strict=True)]:
        if outcome is None:
            continue
        counts[outcome.kind] += 1
        acted.add(run.id)
        if outcome.topic is not None:
            ctx.record(outcome.topic, {"run_id": run.id, **outcome.payload})
    checked = {run.id for run in [*expired, *due]}
    counts["runs_checked"] = len(checked)
    counts["unchanged"] = len(checked - acted)
    return {
        "counts": counts, "now": now.isoformat(), "near_minutes": params.near_minutes,
        "limit_reached": max(len(expired), len(due)) >= params.limit,
    }


async def _each(
    runs: Sequence[RunRecord], act: Callable[[RunRecord], Awaitable[Outcome | None]]
) -> list[Outcome | None]:
    """``act`` on every run, a few at a time, with the outcomes in the runs' order."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(run: RunRecord) -> Outcome | None:
        async with slots:
            return await act(run)

    return list(await asyncio.gather(*(one(run) for run in runs)))


async def _apply(ctx: JobContext, run: RunRecord, change: Callable[[Transition], Outcome | None]) -> Outcome | None:
    """One run's version-checked write; a run that keeps changing or is gone is left for the next sweep."""
    try:
        _, outcome = await ctx.writer.change_run(run.tenant_id, run.id, change, write_if=lambda o: o is not None)
    except (RunChanged, RunNotFound) as exc:
        log.warning("sla sweep left a run for the next sweep", run_id=run.id, error=str(exc))
        return Outcome("skipped", None, {})
    return outcome
