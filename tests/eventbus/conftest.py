"""The ``bus`` fixture: every test asking for it runs once per backend of the ``EventBus``
protocol. A new backend joins the conformance suite by adding its factory to ``BACKENDS``.

A factory yields the bus and how a commit's events get to where that backend reads them before
the committer publishes them (``committed``): nowhere for the in-process bus, the ``events`` table
for the PostgreSQL one, which delivers only what it reads from there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from eventbus import Envelope, EventBus, InProcessBus
from eventbus.feed_bus import FeedBus
from store.event_feed import PostgresEventFeed
from store.tables import events
from tests.postgres_schemas import postgres_schema

Store = Callable[[Sequence[Envelope]], Awaitable[None]]
Backend = tuple[EventBus, Store]


async def _nowhere(_events: Sequence[Envelope]) -> None:
    return None


@asynccontextmanager
async def in_process() -> AsyncIterator[Backend]:
    yield InProcessBus(), _nowhere


def event_rows(commit: Sequence[Envelope]) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {"id": e.id, "tenant_id": e.tenant_id, "run_id": e.run_id, "seq": e.id, "topic": e.topic,
         "actor": "system", "request_id": None, "payload": {}, "created_at": now}
        for e in commit
    ]


@asynccontextmanager
async def postgres() -> AsyncIterator[Backend]:
    async with postgres_schema(own_channel=True) as engine:
        async def store(commit: Sequence[Envelope]) -> None:
            async with engine.begin() as conn:
                await conn.execute(insert(events), event_rows(commit))

        bus = FeedBus(PostgresEventFeed(engine))
        await bus.start()
        try:
            yield bus, store
        finally:
            await bus.stop()


BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[Backend]]] = {
    "in_process": in_process, "postgresql": postgres,
}
_STORES: dict[int, Store] = {}


async def committed(bus: EventBus, commit: Sequence[Envelope]) -> None:
    """One commit as the committer makes it: stored where ``bus`` reads, then published."""
    await _STORES[id(bus)](commit)
    bus.publish(commit)


@pytest.fixture(params=list(BACKENDS))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    async with BACKENDS[request.param]() as (made, store):
        _STORES[id(made)] = store
        try:
            yield made
        finally:
            del _STORES[id(made)]
