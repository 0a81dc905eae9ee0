"""The reads the dashboard makes most often are index lookups, on both stores: the runs list and
the approvals inbox of a tenant, here one with no paused run at all beside another tenant's
paused ones. With 100,000 runs of real size, PostgreSQL's planner once multiplied the two
columns' shares and scanned the whole table for such a tenant (migration 0005 gives it their
joint statistics); this smaller table guards the index use, not that misestimate itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.run_summaries import PENDING_COLUMNS, SUMMARY_COLUMNS
from store.runs import _listed

RUNS = 20_000


async def seed(db: AsyncEngine) -> None:
    """acme's runs all completed, globex's (every tenth) a third of them paused."""
    state, exception = '{"schema_version": 2}', '{"domain": "payments"}'
    async with db.begin() as conn:
        await conn.execute(text(f"""
            WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {RUNS})
            INSERT INTO runs (id, tenant_id, workflow_id, status, trigger_type, started_by, version, last_seq,
                              exception, state, created_at, updated_at)
            SELECT 'run_' || (100000000 + g), CASE WHEN g % 10 = 0 THEN 'globex' ELSE 'acme' END,
                   'exception_pipeline', CASE WHEN g % 30 = 0 THEN 'paused' ELSE 'completed' END, 'api', 'user:a',
                   1, 1, '{exception}', '{state}', '2026-11-30 09:00:00.000000', '2026-11-30 09:00:00.000000'
            FROM s"""))
        await conn.execute(text("ANALYZE"))


async def plan(db: AsyncEngine, query: Any) -> str:
    sql = str(query.compile(dialect=db.dialect, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if db.dialect.name == "sqlite" else "EXPLAIN "
    async with db.connect() as conn:
        rows = (await conn.execute(text(explain + sql))).all()
    return "\n".join(str(row[-1]) for row in rows)


async def test_the_list_and_the_inbox_are_index_lookups(db):
    await seed(db)
    for tenant in ("acme", "globex"):
        inbox = await plan(db, _listed(select(*PENDING_COLUMNS), tenant, 101, {"statuses": ["paused"]}))
        assert "ix_runs_tenant_status" in inbox, (tenant, inbox)
    listed = await plan(db, _listed(select(*SUMMARY_COLUMNS), "acme", 51, {}))
    assert "Seq Scan" not in listed and "SCAN runs" not in listed.replace("SCAN runs USING", ""), listed
