"""Applies many runs' writes in one transaction (group commit), isolating a write that fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import partial

from sqlalchemy import Connection, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.driver_rows import insert_rows, update_rows
from store.event_feed import event_channel
from store.outbox import DEFAULT_OUTBOX, OutboxPolicy, notification_row, outbox_rows
from store.records import EventRecord, RunWrite
from store.sqlite_threads import in_transaction
from store.tables import deliveries, events, idempotency_keys, ingested_items, runs


class WriteConflict(Exception):
    """The run changed under us (another writer won), or an idempotency key or an ingested
    item's key is already taken."""


_MUTABLE = ("status", "version", "last_seq", "state", "pause_expires_at", "updated_at", "executor_id")
_update_run = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"), runs.c.version == bindparam("b_version"))
    .values({name: bindparam(name) for name in _MUTABLE})
)
_next_pg_ids = text(
    "WITH ids AS MATERIALIZED ("
    " SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id FROM generate_series(1, :n)),"
    " notice AS MATERIALIZED (SELECT pg_notify(:channel, max(id)::text) FROM ids)"
    " SELECT id FROM ids, notice ORDER BY id"
)
"""The ids, and the transaction's one notification (its newest id), sent when it commits, to
every process following the log (``store/event_feed.py``): one query, one notice per commit."""
EVENT_ORDER_LOCK = 0x4175746F  # "Auto": the advisory lock every event-writing transaction takes
_take_event_order = text("SELECT pg_advisory_xact_lock(:key)")


def _allocate_event_ids(conn: Connection, n: int) -> list[int]:
    """Global ids for ``n`` new events, assigned before the insert so it needs no RETURNING, and
    in commit order, so a reader that has seen id N has seen every committed id below it.

    SQLite: the caller already wrote in this transaction, so it holds the database's only
    write lock and ``max(id)`` cannot move under it. PostgreSQL: a sequence alone hands out ids
    in the order transactions ask, not the order they commit, so two processes could commit
    ids 7 and 6 in that order and a stream past 7 would never see 6. Each transaction first
    takes a transaction-level advisory lock, held until it commits or rolls back, and only then
    draws from the sequence: the next transaction draws after this one's commit, so ids are
    issued in commit order across every process on the database. The same query asks for one
    ``NOTIFY`` with the newest id (never one per row, and never from a trigger: each notifying
    transaction takes a global lock while it commits).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_take_event_order, {"key": EVENT_ORDER_LOCK})
        return list((conn.execute(_next_pg_ids, {"n": n, "channel": event_channel(conn)})).scalars())
    start = (conn.execute(select(func.coalesce(func.max(events.c.id), 0)))).scalar_one()
    return list(range(start + 1, start + 1 + n))


def _run_row(write: RunWrite) -> dict:
    return {column.name: getattr(write.run, column.name) for column in runs.columns}


def _update_row(write: RunWrite) -> dict:
    row = {name: getattr(write.run, name) for name in _MUTABLE}
    row.update(id=write.run.id, version_before=write.run.version - 1)
    return row


def _apply(conn: Connection, batch: Sequence[RunWrite], outbox: OutboxPolicy) -> tuple[list[list[EventRecord]], int]:
    new_runs = [_run_row(w) for w in batch if w.is_new]
    if new_runs:
        insert_rows(conn, runs, new_runs)
    updates = [_update_row(w) for w in batch if not w.is_new]
    if updates:
        changed = update_rows(conn, runs, {"id": "id", "version": "version_before"}, updates, _update_run)
        if changed != len(updates):
            raise WriteConflict("a run was changed by another writer")
    answers = [asdict(w.idempotency) for w in batch if w.idempotency is not None]
    if answers:
        insert_rows(conn, idempotency_keys, answers)
    items = [asdict(w.ingested) for w in batch if w.ingested is not None]
    if items:
        insert_rows(conn, ingested_items, items)
    drafts = [(w.run, e) for w in batch for e in w.events]
    ids = _allocate_event_ids(conn, len(drafts)) if drafts else []
    if drafts:
        insert_rows(conn, events, [
            {"id": event_id, "tenant_id": run.tenant_id, "run_id": run.id, "seq": e.seq, "topic": e.topic,
             "actor": e.actor, "request_id": e.request_id, "payload": e.payload, "created_at": e.created_at}
            for event_id, (run, e) in zip(ids, drafts, strict=True)
        ])
    owed = outbox_rows(
        conn, [(event_id, run.tenant_id, run.id, e.topic) for event_id, (run, e) in zip(ids, drafts, strict=True)],
        drafts[0][1].created_at, outbox,
    ) if drafts else []
    owed += [notification_row(n, outbox.give_up_after) for w in batch for n in w.notifications]
    if owed:
        insert_rows(conn, deliveries, owed)
    committed: list[list[EventRecord]] = []
    position = 0
    for w in batch:
        records = []
        for e in w.events:
            records.append(EventRecord(
                id=ids[position], tenant_id=w.run.tenant_id, run_id=w.run.id, seq=e.seq,
                topic=e.topic, actor=e.actor, request_id=e.request_id, payload=e.payload,
                created_at=e.created_at,
            ))
            position += 1
        committed.append(records)
    return committed, len(owed)


def _as_outcome(exc: Exception) -> Exception:
    if isinstance(exc, IntegrityError | WriteConflict):
        return WriteConflict(str(exc.args[0] if exc.args else exc))
    return exc


async def write_batch(
    engine: AsyncEngine, batch: Sequence[RunWrite], outbox: OutboxPolicy = DEFAULT_OUTBOX
) -> list[list[EventRecord] | Exception]:
    """Commit ``batch`` in one transaction; if that fails for any reason, commit each write on
    its own, so a write the database refuses (a conflict, a value it cannot store) fails alone.

    Returns, per write, its committed events or the error that kept it out of the store
    (``WriteConflict`` for a stale version or a taken idempotency key). The deliveries the
    events owe are written in the same transaction (``store/outbox.py``); ``outbox.on_written``
    is called after a commit that wrote any.
    """
    try:
        committed, owed = await in_transaction(engine, partial(_apply, batch=batch, outbox=outbox))
        if owed:
            outbox.on_written()
        return list(committed)
    except Exception as exc:
        if len(batch) == 1:
            return [_as_outcome(exc)]
    outcomes: list[list[EventRecord] | Exception] = []
    for write in batch:
        try:
            committed, owed = await in_transaction(engine, partial(_apply, batch=[write], outbox=outbox))
            outcomes.extend(committed)
            if owed:
                outbox.on_written()
        except Exception as exc:
            outcomes.append(_as_outcome(exc))
    return outcomes
