"""The runs list and the approvals inbox read their rows from columns and a few JSON fields
(``store/run_summaries.py``); each row must say exactly what decoding the run's whole state says
(``api.views.run_summary``, ``pending_item``), on both stores, for states of every version:
today's, with and without their parts, and the version-1 states an older release stored
(``tests/fixtures/state_v1.db``)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

from api.views import listed_run, pending_item, pending_listed, run_summary
from store.runs import RunRepository
from store.tables import runs
from tests.domain.test_run_state import full_state

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def v1_states() -> list[dict[str, Any]]:
    with sqlite3.connect(FIXTURES / "state_v1.db") as db:
        return [orjson.loads(state) for (state,) in db.execute("SELECT state FROM runs ORDER BY id")]


def current_states() -> list[dict[str, Any]]:
    full = msgspec.to_builtins(full_state())
    raised = {**full, "severity": "critical"}
    bare = {key: value for key, value in full.items() if key not in ("triage", "policy", "severity")}
    no_playbook = {**full, "policy": {**full["policy"], "playbook_id": None, "playbook_version": None}}
    return [full, raised, bare, no_playbook]


def row(index: int, state: dict[str, Any], exception: dict[str, Any]) -> dict[str, Any]:
    at = T0 + timedelta(seconds=index)
    return {"id": f"run_{index:04d}", "tenant_id": "acme", "workflow_id": "exception_pipeline",
            "status": ["completed", "paused", "failed"][index % 3], "trigger_type": "api", "trigger_ref": None,
            "started_by": "user:ann", "version": 1, "last_seq": 1, "exception": exception, "state": state,
            "sla_deadline": None, "pause_expires_at": None, "created_at": at, "updated_at": at + timedelta(minutes=1)}


async def test_each_listed_row_says_what_the_whole_state_says(db):
    exceptions = [{"source": "stripe", "domain": "payments", "type": "payment.failed", "amount": "42.50",
                   "currency": "USD"}, {"source": "wms", "domain": "orders", "type": "order.stuck"}]
    states = current_states() + v1_states()
    async with db.begin() as conn:
        await conn.execute(runs.insert(), [row(i, s, exceptions[i % 2]) for i, s in enumerate(states)])
    repo = RunRepository(db)
    whole = [run_summary(r).model_dump() for r in await repo.list_for("acme", limit=100)]
    listed = [listed_run(r).model_dump() for r in await repo.summaries_for("acme", limit=100)]
    assert len(whole) == len(states) and listed == whole
    assert {r["severity"] for r in listed} >= {"critical", None} and any(r["playbook_id"] for r in listed[-3:])


async def test_each_inbox_item_says_what_the_whole_state_says(db):
    exception = {"source": "stripe", "domain": "payments", "type": "payment.failed", "amount": "42.50",
                 "currency": "USD", "context": {"order": "SO-1"}}
    paused = [state for state in current_states() + v1_states() if state.get("pause")]
    async with db.begin() as conn:
        await conn.execute(runs.insert(), [{**row(i, s, exception), "status": "paused"} for i, s in enumerate(paused)])
    repo = RunRepository(db)
    whole = [pending_item(r).model_dump() for r in await repo.list_for("acme", statuses=["paused"], limit=100)]
    listed = [pending_listed(r).model_dump() for r in await repo.pending_for("acme", limit=100)]
    assert len(paused) >= 3 and listed == whole
    assert [r.summary.id for r in await repo.pending_for("acme", limit=2, before_id=listed[0]["run_id"])] == \
        [item["run_id"] for item in listed[1:3]]


async def test_the_summaries_take_the_lists_filters(db):
    async with db.begin() as conn:
        await conn.execute(runs.insert(), [row(i, current_states()[0], {"domain": "payments"}) for i in range(9)])
    repo = RunRepository(db)
    for filters in ({}, {"statuses": ["paused"]}, {"before_id": "run_0005"},
                    {"created_after": T0 + timedelta(seconds=3), "created_before": T0 + timedelta(seconds=7)}):
        assert [r.id for r in await repo.summaries_for("acme", limit=4, **filters)] == \
            [r.id for r in await repo.list_for("acme", limit=4, **filters)]
    assert await repo.summaries_for("globex") == []
