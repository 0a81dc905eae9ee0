"""The store on every backend: migrations, group-commit writes with isolated failures, tenant-scoped reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.run_state import CURRENT_SCHEMA_VERSION, StepStatus, new_state
from domain.state_codec import StateTooNew
from store.database import migrate, schema_status
from store.events import EventRepository
from store.idempotency import IdempotencyRepository
from store.records import EventDraft, EventRecord, IdempotentResponse, RunRecord, RunWrite
from store.runs import RunRepository
from store.tables import runs as runs_table
from store.writer import WriteConflict, write_batch
from tests.stored import stored_run

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def new_run(run_id: str, tenant: str = "acme", *, minutes: int = 0, status: str = "received",
            workflow: str = "exception_pipeline", topics: tuple[str, ...] = ("run.received",),
            key: str | None = None) -> RunWrite:
    at = T0 + timedelta(minutes=minutes)
    run = RunRecord(
        id=run_id, tenant_id=tenant, workflow_id=workflow, status=status, trigger_type="api",
        trigger_ref=None, started_by="user:ana", version=1, last_seq=len(topics),
        exception={"domain": "payments", "amount": "42.50"}, state=new_state(), sla_deadline=at + timedelta(hours=6),
        pause_expires_at=None, created_at=at, updated_at=at,
    )
    drafts = [EventDraft(i, t, "user:ana", {"n": i}, "req-1", at) for i, t in enumerate(topics, 1)]
    answer = IdempotentResponse(tenant, key, "f" * 64, 202, '{"ok": true}', at) if key else None
    return RunWrite(run, True, drafts, answer)


def committed(outcome: list[EventRecord] | Exception) -> list[EventRecord]:
    """A write's events; a write that failed fails the test with its error."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def advance(write: RunWrite, status: str, *topics: str, version: int | None = None) -> RunWrite:
    """The next write of the same run; ``version`` forces a stale one."""
    run = write.run
    drafts = [EventDraft(run.last_seq + i, t, "agent:x", {}, None, run.created_at)
              for i, t in enumerate(topics, 1)]
    state = new_state(last_actor="agent:x", exception_status=run.status)
    moved = replace(run, status=status, version=version or run.version + 1, last_seq=run.last_seq + len(topics),
                    state=state)
    return RunWrite(moved, False, drafts)


async def test_migrations_bring_the_schema_to_head(db: AsyncEngine) -> None:
    current, head = await schema_status(db)
    assert head is not None and current == head
    await migrate(db)  # a second start is a no-op
    assert await schema_status(db) == (head, head)


async def test_a_batch_commits_runs_and_events_with_per_run_seq_and_increasing_ids(db: AsyncEngine) -> None:
    a = new_run("run_a", topics=("run.received", "triage.completed", "policy.evaluated"))
    b = new_run("run_b", tenant="globex", topics=("run.received", "triage.completed"))
    first = [committed(o) for o in await write_batch(db, [a, b])]
    assert [[(e.run_id, e.seq) for e in out] for out in first] == [
        [("run_a", 1), ("run_a", 2), ("run_a", 3)], [("run_b", 1), ("run_b", 2)],
    ]
    ids = [e.id for out in first for e in out]
    assert ids == sorted(ids) and len(set(ids)) == 5
    [second] = [committed(o) for o in await write_batch(db, [advance(a, "completed", "run.completed")])]
    assert second[0].seq == 4 and second[0].id > max(ids)

    stored = await EventRepository(db).for_run("acme", "run_a")
    assert [(e.seq, e.topic) for e in stored] == [
        (1, "run.received"), (2, "triage.completed"), (3, "policy.evaluated"), (4, "run.completed"),
    ]
    assert [e.id for e in stored] == [*ids[:3], second[0].id]
    assert stored[0].created_at == T0 and stored[0].payload == {"n": 1} and stored[0].request_id == "req-1"
    run = await stored_run(RunRepository(db), "acme", "run_a")
    assert (run.status, run.version, run.last_seq) == ("completed", 2, 4)
    assert run.state == new_state(last_actor="agent:x", exception_status="received")
    assert run.sla_deadline == T0 + timedelta(hours=6)


async def test_a_stale_version_is_rejected_and_the_rest_of_the_batch_commits(db: AsyncEngine) -> None:
    a, b = new_run("run_a"), new_run("run_b")
    await write_batch(db, [a, b])
    await write_batch(db, [advance(a, "triaged", "triage.completed")])  # a is now at version 2
    stale = advance(a, "failed", "run.failed", version=2)
    fresh = advance(b, "triaged", "triage.completed")
    outcomes = await write_batch(db, [stale, fresh])
    assert isinstance(outcomes[0], WriteConflict)
    assert [e.topic for e in committed(outcomes[1])] == ["triage.completed"]
    assert (await stored_run(RunRepository(db), "acme", "run_a")).status == "triaged"
    assert (await stored_run(RunRepository(db), "acme", "run_b")).status == "triaged"
    assert [e.topic for e in await EventRepository(db).for_run("acme", "run_a")] == [
        "run.received", "triage.completed",
    ]
    [alone] = await write_batch(db, [stale])
    assert isinstance(alone, WriteConflict)


async def test_a_duplicate_idempotency_key_fails_only_its_own_write(db: AsyncEngine) -> None:
    [done] = await write_batch(db, [new_run("run_1", key="k-1")])
    assert len(committed(done)) == 1
    outcomes = await write_batch(db, [
        new_run("run_2", key="k-2"), new_run("run_3", key="k-1"), new_run("run_4"),
        new_run("run_5", tenant="globex", key="k-1"),  # keys are per tenant
    ])
    assert [isinstance(o, WriteConflict) for o in outcomes] == [False, True, False, False]
    runs = RunRepository(db)
    assert await runs.get("acme", "run_3") is None
    assert await EventRepository(db).for_run("acme", "run_3") == []
    assert [r.id for r in await runs.list_for("acme")] == ["run_4", "run_2", "run_1"]
    remembered = await IdempotencyRepository(db).get("acme", "k-1")
    assert remembered is not None
    assert (remembered.status_code, remembered.response) == (202, '{"ok": true}')


async def test_runs_are_only_visible_to_their_tenant(db: AsyncEngine) -> None:
    await write_batch(db, [new_run("run_a", "tenant-a"), new_run("run_b", "tenant-b")])
    runs, log = RunRepository(db), EventRepository(db)
    assert (await stored_run(RunRepository(db), "tenant-a", "run_a")).tenant_id == "tenant-a"
    assert await runs.get("tenant-b", "run_a") is None
    assert [r.id for r in await runs.list_for("tenant-b")] == ["run_b"]
    assert await log.for_run("tenant-b", "run_a") == []
    assert {e.run_id for e in await log.after("tenant-b", 0)} == {"run_b"}


async def test_list_paginates_newest_first_with_before_id(db: AsyncEngine) -> None:
    await write_batch(db, [new_run(f"run_{i}", minutes=i) for i in (3, 1, 5, 2, 4)])
    runs = RunRepository(db)
    pages, cursor = [], None
    while page := await runs.list_for("acme", before_id=cursor, limit=2):
        pages.append([r.id for r in page])
        cursor = page[-1].id
    assert pages == [["run_5", "run_4"], ["run_3", "run_2"], ["run_1"]]


async def test_list_filters_by_status_workflow_and_time(db: AsyncEngine) -> None:
    await write_batch(db, [
        new_run("run_1", minutes=0, status="completed"),
        new_run("run_2", minutes=10, status="paused"),
        new_run("run_3", minutes=20, status="failed", workflow="nightly_recon"),
        new_run("run_4", minutes=30, status="paused", workflow="nightly_recon"),
    ])
    runs = RunRepository(db)

    async def ids(**filters: Any) -> list[str]:
        return [r.id for r in await runs.list_for("acme", **filters)]

    assert await ids(statuses=["paused"]) == ["run_4", "run_2"]
    assert await ids(statuses=["completed", "failed"]) == ["run_3", "run_1"]
    assert await ids(workflow_id="nightly_recon") == ["run_4", "run_3"]
    assert await ids(statuses=["paused"], workflow_id="exception_pipeline") == ["run_2"]
    window = {"created_after": T0 + timedelta(minutes=10), "created_before": T0 + timedelta(minutes=30)}
    assert await ids(**window) == ["run_3", "run_2"]  # after is inclusive, before exclusive


async def test_the_log_reads_in_order_and_within_the_tenant(db: AsyncEngine) -> None:
    a = new_run("run_a", topics=("run.received", "triage.completed", "run.paused"))
    b = new_run("run_b", tenant="globex", topics=("run.received",))
    c = new_run("run_c", topics=("run.received", "run.completed"))
    outcomes = [committed(o) for o in await write_batch(db, [a, b, c])]
    acme_ids = [e.id for out in (outcomes[0], outcomes[2]) for e in out]
    log = EventRepository(db)
    assert [e.seq for e in await log.for_run("acme", "run_a", after_seq=1)] == [2, 3]
    assert [e.seq for e in await log.for_run("acme", "run_a", limit=2)] == [1, 2]
    assert [e.id for e in await log.after("acme", 0)] == sorted(acme_ids)
    assert [e.id for e in await log.after("acme", acme_ids[2])] == acme_ids[3:]
    assert [e.id for e in await log.after("acme", 0, limit=2)] == acme_ids[:2]
    assert [e.topic for e in await log.after("globex", 0)] == ["run.received"]
    run_c_ids = [e.id for e in outcomes[2]]
    assert [e.id for e in await log.after("acme", 0, run_id="run_c")] == run_c_ids
    assert [e.id for e in await log.after("acme", run_c_ids[0], run_id="run_c")] == run_c_ids[1:]
    assert await log.after("globex", 0, run_id="run_c") == []


async def test_a_naive_timestamp_is_refused_on_every_backend_and_fails_only_its_own_write(db: AsyncEngine) -> None:
    write = new_run("run_naive")
    write.run.created_at = datetime(2026, 11, 24, 9, 0)  # no tzinfo
    [refused, committed] = await write_batch(db, [write, new_run("run_fine")])
    assert isinstance(refused, Exception) and "naive datetime" in str(refused)
    assert isinstance(committed, list) and committed
    assert await RunRepository(db).get("acme", "run_naive") is None
    assert await RunRepository(db).get("acme", "run_fine") is not None


async def test_a_state_an_older_release_stored_reads_as_the_current_shape(db: AsyncEngine) -> None:
    """A row whose state is the untyped v1 dict (as 6fe876f wrote it) is upgraded when read, on every backend."""
    await write_batch(db, [new_run("run_old"), new_run("run_new")])
    v1 = {"policy": {"playbook": "payment-processor-retry@2", "playbook_name": "Retry", "reasoning": "retryable",
                     "notes": [], "requires_approval": False, "approval_reasons": [], "gate": None},
          "steps": {"retry": {"status": "failed", "order": 1, "error": "503", "at": T0.isoformat()}},
          "steps_total": 2}
    too_new = {"schema_version": CURRENT_SCHEMA_VERSION + 1}
    async with db.begin() as conn:
        await conn.execute(runs_table.update().where(runs_table.c.id == "run_old").values(state=v1))
        await conn.execute(runs_table.update().where(runs_table.c.id == "run_new").values(state=too_new))
    run = await RunRepository(db).get("acme", "run_old")
    assert run is not None and run.state.schema_version == CURRENT_SCHEMA_VERSION
    assert run.state.policy is not None
    assert (run.state.policy.playbook_id, run.state.policy.playbook_version) == ("payment-processor-retry", 2)
    assert run.state.total_steps == 2
    assert run.state.steps["retry"].status == StepStatus.FAILED and run.state.steps["retry"].failed_at == T0
    with pytest.raises(StateTooNew):  # a newer release's state is refused, not misread
        await RunRepository(db).get("acme", "run_new")
