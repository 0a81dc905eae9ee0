"""The outbox on every backend: a commit writes the deliveries its events owe, in its own
transaction, for the tenant's enabled endpoints whose patterns match, and nothing for a write
the database refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.outbox import OutboxPolicy
from store.tables import deliveries
from store.webhook_endpoints import EndpointRecord, EndpointRepository
from store.writer import WriteConflict, write_batch
from tests.store.test_store import T0, advance, committed, new_run


def endpoint(endpoint_id: str, tenant: str, topics: list[str], *, enabled: bool = True) -> EndpointRecord:
    return EndpointRecord(
        tenant_id=tenant, id=endpoint_id, url=f"https://hooks.example.com/{endpoint_id}", description="",
        topics=topics, secret="whsec_" + "A" * 44, previous_secret=None, previous_secret_until=None,
        enabled=enabled, disabled_reason=None, consecutive_failures=0, version=1, created_at=T0,
        created_by="user:ann", updated_at=T0,
    )


async def owed(db: AsyncEngine) -> list[tuple[str, int, str, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(deliveries.c.endpoint_id, deliveries.c.event_id, deliveries.c.topic,
                                         deliveries.c.status).order_by(deliveries.c.event_id, deliveries.c.endpoint_id))
        return [tuple(row) for row in rows]


async def test_each_matching_event_owes_one_delivery_per_subscribed_endpoint(db: AsyncEngine) -> None:
    endpoints = EndpointRepository(db)
    await endpoints.create(endpoint("whk_all_runs", "acme", ["run.*"]))
    await endpoints.create(endpoint("whk_done", "acme", ["run.completed", "approval.#"]))
    await endpoints.create(endpoint("whk_off", "acme", ["#"], enabled=False))
    await endpoints.create(endpoint("whk_other", "globex", ["#"]))
    woken: list[int] = []
    policy = OutboxPolicy(timedelta(hours=1), lambda: woken.append(1))

    first = new_run("run_1", topics=("run.received", "triage.completed", "run.completed"))
    [events] = [committed(o) for o in await write_batch(db, [first], policy)]
    received, _, completed = events
    assert await owed(db) == [
        ("whk_all_runs", received.id, "run.received", "pending"),
        ("whk_all_runs", completed.id, "run.completed", "pending"),
        ("whk_done", completed.id, "run.completed", "pending"),
    ]
    assert woken == [1]

    await write_batch(db, [new_run("run_quiet", topics=("triage.completed",))], policy)
    assert len(await owed(db)) == 3 and woken == [1]  # nothing owed, nobody woken


async def test_a_refused_write_owes_nothing(db: AsyncEngine) -> None:
    await EndpointRepository(db).create(endpoint("whk_all", "acme", ["#"]))
    first = new_run("run_1")
    await write_batch(db, [first])
    before = await owed(db)
    stale = advance(first, "triaged", "run.completed", version=1)  # version 1 is taken: a conflict
    fresh = new_run("run_2", topics=("run.completed",))
    refused, accepted = await write_batch(db, [stale, fresh])
    assert isinstance(refused, WriteConflict)
    [event] = committed(accepted)
    assert await owed(db) == [*before, ("whk_all", event.id, "run.completed", "pending")]


async def test_a_channel_that_subscribes_in_config_is_owed_its_events(db: AsyncEngine) -> None:
    policy = OutboxPolicy(timedelta(hours=1), declared={"acme": [("ops-slack", ["run.completed"])]})
    [events] = [committed(o) for o in await write_batch(
        db, [new_run("run_1", topics=("run.received", "run.completed"))], policy)]
    await write_batch(db, [new_run("run_other", "globex", topics=("run.completed",))], policy)
    assert await owed(db) == [("channel:ops-slack", events[1].id, "run.completed", "pending")]
