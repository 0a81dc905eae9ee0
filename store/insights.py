"""Tenant-scoped reads the copilot asks that the API does not: text search over the log, and
statistics over a window computed in the database, so a question costs one short query even
with a large store."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Text, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.events import event_from_row
from store.records import EventRecord
from store.tables import events, runs

_playbook = func.coalesce(
    runs.c.state[("policy", "playbook_id")].as_string(),
    runs.c.state[("policy", "playbook")].as_string(),  # a state from before schema version 2: "id@version"
)
_duration = runs.c.state[("feedback", "duration_seconds")].as_float()
_approval = runs.c.state[("policy", "requires_approval")].as_boolean()
_error = runs.c.state["error"].as_string()


async def search_events(
    engine: AsyncEngine, tenant_id: str, text: str, *, since: datetime | None = None, until: datetime | None = None,
    limit: int = 20, scan: int = 5000,
) -> tuple[list[EventRecord], bool]:
    """The tenant's newest events whose topic or payload contains ``text`` (case-insensitive),
    looking at most at the ``scan`` newest events of the range; the flag says fewer than ``limit``
    were found in a full scan, so older matches may exist."""
    newest = select(events.c.id).where(events.c.tenant_id == tenant_id)
    if since:
        newest = newest.where(events.c.created_at >= since)
    if until:
        newest = newest.where(events.c.created_at < until)
    window = newest.order_by(events.c.id.desc()).limit(scan).subquery()
    needle = text.lower()
    haystack = func.lower(events.c.topic + " " + cast(events.c.payload, Text))
    query = (
        select(events)
        .where(events.c.id.in_(select(window.c.id)), events.c.tenant_id == tenant_id)
        .where(haystack.contains(needle, autoescape=True))
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        found = [event_from_row(row) for row in await conn.execute(query)]
        if len(found) == limit:
            return found, False
        scanned = (await conn.execute(select(func.count()).select_from(window))).scalar_one()
    return found, scanned >= scan


async def run_statistics(
    engine: AsyncEngine, tenant_id: str, since: datetime, until: datetime, *,
    group_by: Literal["workflow", "playbook"] = "workflow", top_reasons: int = 5,
) -> dict[str, Any]:
    """Runs created in [since, until) per workflow or playbook: counts by status, durations of
    the runs that ended (average, longest), how many needed a human (HITL rate), and the most
    frequent failure reasons."""
    key = runs.c.workflow_id if group_by == "workflow" else func.coalesce(_playbook, "(none)")
    in_window = (runs.c.tenant_id == tenant_id, runs.c.created_at >= since, runs.c.created_at < until)
    # Each JSON value is extracted once per run (a materialized CTE): the aggregates below would
    # otherwise each extract it again, and parsing the state was most of the time on a week of runs.
    rows = (
        select(key.label("key"), runs.c.status.label("status"), _duration.label("duration"),
               case((_approval.is_(True), 1), else_=0).label("hitl"))
        .where(*in_window)
        .cte("window_runs")
        .prefix_with("MATERIALIZED")
    )
    totals = (
        select(rows.c.key, rows.c.status, func.count().label("n"), func.avg(rows.c.duration).label("avg"),
               func.count(rows.c.duration).label("ended"), func.max(rows.c.duration).label("max"),
               func.sum(rows.c.hitl).label("hitl"))
        .group_by(rows.c.key, rows.c.status)
    )
    reasons = (
        select(key.label("key"), _error.label("error"), func.count().label("n"))
        .where(*in_window, runs.c.status == "failed", _error.is_not(None))
        .group_by(key, _error)
    )
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "runs": 0, "statuses": {}, "hitl": 0, "_durations": [0.0, 0, None], "failure_reasons": {}})

    async with engine.connect() as conn:  # one connection: both reads see the same snapshot
        total_rows = list(await conn.execute(totals))
        reason_rows = list(await conn.execute(reasons))
    for row in total_rows:
        group = groups[row.key]
        group["runs"] += row.n
        group["statuses"][row.status] = row.n
        group["hitl"] += int(row.hitl or 0)
        if row.ended:
            spent = group["_durations"]
            spent[0] += float(row.avg) * row.ended
            spent[1] += row.ended
            spent[2] = max(spent[2] or 0.0, round(float(row.max), 3))
    for row in reason_rows:
        groups[row.key]["failure_reasons"][row.error[:200]] = row.n
    out = {}
    for name, group in sorted(groups.items()):
        total, count, longest = group.pop("_durations")
        top = sorted(group["failure_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:top_reasons]
        out[name] = {
            **group,
            "failure_reasons": [{"reason": reason, "runs": n} for reason, n in top],
            "hitl_rate": round(group["hitl"] / group["runs"], 3) if group["runs"] else 0.0,
            "duration_seconds": {"average": round(total / count, 3), "longest": longest} if count else None,
        }
    return {"since": since.isoformat(), "until": until.isoformat(), "group_by": group_by, "groups": out}
