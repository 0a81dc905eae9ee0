"""Claiming deliveries on every backend: claims made at once never share a delivery, a held
claim keeps others off until it lapses or its process is declared dead, and then another
worker takes the delivery over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from store.deliveries import DeliveryRepository
from store.executors import ExecutorRecord, ExecutorRepository
from store.outbox import pending_row
from store.webhook_endpoints import EndpointRepository
from tests.store.test_outbox import endpoint
from tests.store.test_store import T0


async def seeded(db: AsyncEngine, count: int, workers: list[str]) -> DeliveryRepository:
    for worker in workers:
        await ExecutorRepository(db).register(ExecutorRecord(worker, "host", 1, T0, T0))
    await EndpointRepository(db).create(endpoint("whk_1", "acme", ["#"]))
    repo = DeliveryRepository(db)
    for n in range(count):
        await repo.add(pending_row(f"dlv_{n:04d}", "acme", "whk_1", "webhook.test", T0, timedelta(hours=1),
                                   message={"n": n}))
    return repo


async def test_workers_claiming_at_once_never_share_a_delivery(db: AsyncEngine) -> None:
    workers = [f"exe_{w}" for w in range(6)]
    repo = await seeded(db, 60, workers)
    lease = T0 + timedelta(seconds=40)
    claims = await asyncio.gather(*[repo.claim_due(worker, T0, lease, 7) for worker in workers])
    ids = [c.delivery.id for claimed in claims for c in claimed]
    assert len(ids) == len(set(ids)) == 42
    assert all(c.endpoint is not None and c.endpoint.id == "whk_1" and c.event is None
               for claimed in claims for c in claimed)


async def test_a_lapsed_claim_is_taken_over(db: AsyncEngine) -> None:
    repo = await seeded(db, 3, ["exe_dead", "exe_alive"])
    lease = T0 + timedelta(seconds=40)
    first = await repo.claim_due("exe_dead", T0, lease, 10)
    assert len(first) == 3
    assert await repo.claim_due("exe_alive", T0 + timedelta(seconds=39), lease, 10) == []
    taken = await repo.claim_due("exe_alive", T0 + timedelta(seconds=41), T0 + timedelta(seconds=81), 10)
    assert sorted(c.delivery.id for c in taken) == ["dlv_0000", "dlv_0001", "dlv_0002"]
    assert {c.delivery.claimed_by for c in taken} == {"exe_alive"}
    stored = await repo.get("acme", "dlv_0000")
    assert stored is not None and stored[0].claimed_until == T0 + timedelta(seconds=81)


async def test_the_claims_of_a_process_declared_dead_are_taken_over_at_once(db: AsyncEngine) -> None:
    repo = await seeded(db, 2, ["exe_dead", "exe_alive"])
    assert len(await repo.claim_due("exe_dead", T0, T0 + timedelta(hours=1), 10)) == 2
    assert await repo.claim_due("exe_alive", T0, T0 + timedelta(hours=1), 10) == []
    await ExecutorRepository(db).forget(keep="exe_alive")
    assert len(await repo.claim_due("exe_alive", T0, T0 + timedelta(hours=1), 10)) == 2
