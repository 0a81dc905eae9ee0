"""Deliveries and their attempts: what the delivery worker claims and records, and what the API
lists, shows and sends again. Reads take the tenant first, except the worker's claim, which is
system-wide.

A claim marks due deliveries with the claiming process and a lease (``claimed_until``). On
PostgreSQL the due rows are locked with ``FOR UPDATE SKIP LOCKED`` first, so processes claiming
at once each get other rows and never wait on each other. A process that dies leaves its claims
until they lapse or its executor row is removed (at a restart on SQLite; when its runs are taken
over on PostgreSQL), and another worker takes them over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from store.driver_rows import insert_rows, update_rows
from store.events import event_from_row
from store.outbox import CHANNEL_PREFIX
from store.records import EventRecord
from store.sqlite_threads import in_connection, in_transaction
from store.tables import deliveries, delivery_attempts, events, executors, webhook_endpoints
from store.webhook_endpoints import EndpointRecord, endpoint_from_row


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: str
    tenant_id: str
    endpoint_id: str
    event_id: int | None
    run_id: str | None
    topic: str
    message: dict[str, Any] | None
    status: str
    """``pending`` (waiting for a try), ``delivered``, ``dead`` (given up) or ``cancelled``."""
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    delivery_id: str
    n: int
    tenant_id: str
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_snippet: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed delivery with what sending it needs: its endpoint and, for an event's, the event."""

    delivery: DeliveryRecord
    endpoint: EndpointRecord | None
    """``None`` for a notify step's delivery: its ``endpoint_id`` names a channel."""
    event: EventRecord | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed delivery after a try."""

    delivery: DeliveryRecord
    attempt: AttemptRecord
    status: str
    """``delivered``, ``pending`` (to be tried again at ``next_attempt_at``) or ``dead``."""
    next_attempt_at: datetime | None

    @property
    def succeeded(self) -> bool:
        return self.status == "delivered"


class DeliveryFilters(TypedDict, total=False):
    endpoint_id: str | None
    status: str | None
    run_id: str | None
    created_after: datetime | None
    created_before: datetime | None
    before_id: str | None


def delivery_from_row(row: Any) -> DeliveryRecord:
    """A ``select(deliveries)`` row, read by position: the record's fields are the table's columns, in order."""
    return DeliveryRecord(*row)


def _attempt(row: Any) -> AttemptRecord:
    return AttemptRecord(**{c.name: row._mapping[c.name] for c in delivery_attempts.columns})


_finish = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.claimed_by == bindparam("b_worker"))
    .values(status=bindparam("status"), attempts=bindparam("attempts"), next_attempt_at=bindparam("next_attempt_at"),
            last_status_code=bindparam("last_status_code"), last_error=bindparam("last_error"),
            delivered_at=bindparam("delivered_at"), updated_at=bindparam("updated_at"),
            claimed_until=bindparam("claimed_until"), claimed_by=bindparam("claimed_by"))
)
"""A try's end, written only over the claim that made it (``driver_rows.update_rows`` sends the
same as plain SQL on SQLite and one statement for the batch on PostgreSQL)."""


_its_endpoint = and_(webhook_endpoints.c.tenant_id == deliveries.c.tenant_id,
                     webhook_endpoints.c.id == deliveries.c.endpoint_id)


def _endpoint_key(tenant: str, endpoint: str) -> Any:
    return and_(webhook_endpoints.c.tenant_id == tenant, webhook_endpoints.c.id == endpoint)


class DeliveryRepository:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    # --- the worker ---------------------------------------------------------------------------

    async def claim_due(self, worker_id: str, now: datetime, until: datetime, limit: int) -> list[Claimed]:
        """Up to ``limit`` pending deliveries due by ``now`` whose endpoint is enabled and whose
        last claim (if any) has lapsed or was made by a process no longer registered (one that
        was declared dead, ``store/executors.py``), oldest due first, claimed for ``worker_id``
        until ``until``."""
        due = (
            select(deliveries.c.id)
            .outerjoin(webhook_endpoints, _its_endpoint)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now,
                   or_(webhook_endpoints.c.enabled.is_(True), deliveries.c.endpoint_id.startswith(CHANNEL_PREFIX)),
                   or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until < now,
                       deliveries.c.claimed_by.not_in(select(executors.c.id))))
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
        )

        def claim(conn: Connection) -> list[Claimed]:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(update(deliveries).where(deliveries.c.id.in_(ids))
                         .values(claimed_by=worker_id, claimed_until=until))
            rows = conn.execute(select(deliveries).where(deliveries.c.id.in_(ids)))
            claimed = [delivery_from_row(row) for row in rows]
            wanted = {d.endpoint_id for d in claimed if not d.endpoint_id.startswith(CHANNEL_PREFIX)}
            endpoints = {(e.tenant_id, e.id): e for e in map(endpoint_from_row, conn.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.id.in_(wanted))))} if wanted else {}
            event_ids = [d.event_id for d in claimed if d.event_id is not None]
            found: dict[int, EventRecord] = {}
            if event_ids:
                rows_of_events = conn.execute(select(events).where(events.c.id.in_(event_ids)))
                found = {e.id: e for e in map(event_from_row, rows_of_events)}
            return [Claimed(d, endpoints.get((d.tenant_id, d.endpoint_id)),
                            found.get(d.event_id) if d.event_id is not None else None) for d in claimed]

        return await in_transaction(self._engine, claim)

    async def record(self, worker_id: str, outcomes: list[Outcome], now: datetime, disable_after: int) -> list[str]:
        """Write what the tries saw, in one transaction: each attempt, each delivery's new
        status (only while ``worker_id`` still holds its claim), and each endpoint's run of
        failures; an endpoint that reaches ``disable_after`` failures in a row is disabled.
        Returns the ids of the endpoints disabled now."""

        def write(conn: Connection) -> list[str]:
            insert_rows(conn, delivery_attempts, [_attempt_row(o.attempt) for o in outcomes])
            update_rows(conn, deliveries, {"id": "b_id", "claimed_by": "b_worker"}, [{
                "status": o.status, "attempts": o.attempt.n, "next_attempt_at": o.next_attempt_at,
                "last_status_code": o.attempt.status_code, "last_error": o.attempt.error,
                "delivered_at": now if o.succeeded else None, "updated_at": now,
                "claimed_until": None, "claimed_by": None,
                "b_id": o.delivery.id, "b_worker": worker_id,
            } for o in outcomes], _finish)
            disabled = []
            for (tenant, endpoint), (succeeded, failures) in _endpoint_runs(outcomes).items():
                key = _endpoint_key(tenant, endpoint)
                if succeeded:
                    conn.execute(update(webhook_endpoints)
                                 .where(key, webhook_endpoints.c.consecutive_failures != failures)
                                 .values(consecutive_failures=failures))
                if not failures:
                    continue
                if not succeeded:
                    conn.execute(update(webhook_endpoints).where(key).values(
                        consecutive_failures=webhook_endpoints.c.consecutive_failures + failures))
                turned_off = conn.execute(
                    update(webhook_endpoints)
                    .where(key, webhook_endpoints.c.enabled.is_(True),
                           webhook_endpoints.c.consecutive_failures >= disable_after)
                    .values(enabled=False, updated_at=now, version=webhook_endpoints.c.version + 1,
                            disabled_reason=f"disabled after {disable_after} failed deliveries in a row")
                ).rowcount
                if turned_off:
                    disabled.append(endpoint)
            return disabled

        return await in_transaction(self._engine, write)

    # --- the API ------------------------------------------------------------------------------

    async def list_for(self, tenant_id: str, *, limit: int = 50, **filters: Unpack[DeliveryFilters]
                       ) -> list[DeliveryRecord]:
        """The tenant's deliveries, newest first."""
        query = select(deliveries).where(deliveries.c.tenant_id == tenant_id)
        for name in ("endpoint_id", "status", "run_id"):
            if (value := filters.get(name)) is not None:
                query = query.where(deliveries.c[name] == value)
        if (after := filters.get("created_after")) is not None:
            query = query.where(deliveries.c.created_at >= after)
        if (before := filters.get("created_before")) is not None:
            query = query.where(deliveries.c.created_at < before)
        if before_id := filters.get("before_id"):
            query = query.where(deliveries.c.id < before_id)
        query = query.order_by(deliveries.c.id.desc()).limit(limit)
        return await in_connection(self._engine, lambda conn: [delivery_from_row(r) for r in conn.execute(query)])

    async def get(self, tenant_id: str, delivery_id: str) -> tuple[DeliveryRecord, list[AttemptRecord]] | None:
        def read(conn: Connection) -> tuple[DeliveryRecord, list[AttemptRecord]] | None:
            row = conn.execute(select(deliveries).where(deliveries.c.tenant_id == tenant_id,
                                                        deliveries.c.id == delivery_id)).first()
            if row is None:
                return None
            tried = conn.execute(select(delivery_attempts).where(delivery_attempts.c.delivery_id == delivery_id)
                                 .order_by(delivery_attempts.c.n))
            return delivery_from_row(row), [_attempt(r) for r in tried]

        return await in_connection(self._engine, read)

    async def add(self, row: dict[str, Any]) -> DeliveryRecord:
        """A delivery not caused by an event (an endpoint's test message), as written."""
        await in_transaction(self._engine, lambda conn: conn.execute(insert(deliveries).values(row)))
        return DeliveryRecord(**row)

    async def redeliver(self, tenant_id: str, *, now: datetime, give_up_at: datetime,
                        delivery_id: str | None = None, dead_of_endpoint: str | None = None) -> int:
        """Make deliveries due again at once, with a new retry window: one delivered, dead or
        cancelled delivery, or every dead one of an endpoint. Returns how many."""
        query = update(deliveries).where(deliveries.c.tenant_id == tenant_id)
        if delivery_id is not None:
            query = query.where(deliveries.c.id == delivery_id, deliveries.c.status != "pending")
        else:
            query = query.where(deliveries.c.endpoint_id == dead_of_endpoint, deliveries.c.status == "dead")
        query = query.values(status="pending", next_attempt_at=now, give_up_at=give_up_at, updated_at=now,
                             claimed_by=None, claimed_until=None)
        return await in_transaction(self._engine, lambda conn: conn.execute(query).rowcount)


def _attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    return {name: getattr(attempt, name) for name in AttemptRecord.__dataclass_fields__}


def _endpoint_runs(outcomes: list[Outcome]) -> dict[tuple[str, str], tuple[bool, int]]:
    """Per endpoint: whether any try in this batch succeeded, and how many failed after the
    last success (all of them when none succeeded), in the order the tries ended."""
    runs: dict[tuple[str, str], tuple[bool, int]] = {}
    for o in outcomes:
        if o.delivery.endpoint_id.startswith(CHANNEL_PREFIX):
            continue  # a channel is configuration, not an endpoint that can be disabled
        key = (o.delivery.tenant_id, o.delivery.endpoint_id)
        succeeded, failures = runs.get(key, (False, 0))
        runs[key] = (True, 0) if o.succeeded else (succeeded, failures + 1)
    return runs

