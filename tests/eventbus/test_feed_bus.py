"""The PostgreSQL bus between processes: two engines, each with its own pool, listener and bus,
stand for two server processes on one database. Each process's subscribers see every committed
event of the database once, in id (commit) order, whichever process committed it; a lost
notification only delays, and a listener whose connection is killed listens again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from eventbus import Envelope, Subscription
from eventbus.feed_bus import FeedBus
from pipeline.committer import GroupCommitter
from store.event_feed import PostgresEventFeed
from store.tables import events
from tests.postgres_schemas import postgres_schema, second_process
from tests.store.test_store import new_run

TOPICS = ("run.received", "triage.completed", "policy.evaluated")
WAIT = 20  # seconds: an upper bound for a hang, never a measurement


@dataclass
class Process:
    engine: AsyncEngine
    feed: PostgresEventFeed
    bus: FeedBus
    committer: GroupCommitter


@asynccontextmanager
async def process(like: AsyncEngine, *, poll_seconds: float = 1.0, deaf: bool = False) -> AsyncIterator[Process]:
    """A second engine on ``like``'s schema and channel, with its own bus and committer. A ``deaf``
    process never hears a notification: only its timer reads the log."""
    async with second_process(like) as engine:
        feed = DeafFeed(engine) if deaf else PostgresEventFeed(engine)
        bus = FeedBus(feed, poll_seconds=poll_seconds)
        await bus.start()
        committer = GroupCommitter(engine, bus)
        committer.start()
        try:
            yield Process(engine, feed, bus, committer)
        finally:
            await committer.stop()
            await bus.stop()


class DeafFeed(PostgresEventFeed):
    """Every notification is lost."""

    async def watch(self, wake: Callable[[int | None], None]) -> None:
        await asyncio.Event().wait()


async def until(sub: Subscription, count: int) -> list[Envelope]:
    """What ``sub`` receives until it has ``count`` events."""
    got: list[Envelope] = []
    while len(got) < count:
        batch = await asyncio.wait_for(sub.next_batch(), WAIT)
        assert batch is not None, "the subscription ended"
        got.extend(batch)
    return got


async def ids_in_log(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(events.c.id).order_by(events.c.id))).scalars())


async def until_true(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.01)


async def test_each_process_sees_every_commit_of_both_once_in_commit_order() -> None:
    async with postgres_schema(own_channel=True) as schema, process(schema) as a, process(schema) as b:
        seen_by_a, seen_by_b = a.bus.subscribe(tenant_id="acme", maxsize=10_000), b.bus.subscribe(
            tenant_id="acme", maxsize=10_000)

        async def write(p: Process, name: str) -> None:
            for n in range(25):
                await p.committer.submit(new_run(f"run_{name}_{n:03d}", topics=TOPICS))

        await asyncio.gather(*(write(p, f"{label}{w}") for label, p in (("a", a), ("b", b)) for w in range(4)))
        everything = await ids_in_log(schema)
        assert len(everything) == 2 * 4 * 25 * len(TOPICS)
        for sub in (seen_by_a, seen_by_b):
            received = [e.id for e in await until(sub, len(everything))]
            assert received == everything  # each once, in commit order, own and other's interleaved
        await a.bus.drain()
        await b.bus.drain()
        assert await asyncio.wait_for(seen_by_a.next_batch(timeout=0.05), WAIT) == []  # and nothing twice


async def test_a_process_that_hears_no_notification_still_receives_every_event_from_its_timer() -> None:
    async with postgres_schema(own_channel=True) as schema, process(schema) as a, process(
        schema, poll_seconds=0.2, deaf=True
    ) as deaf:
        sub = deaf.bus.subscribe(tenant_id="acme")
        written = [e.id for n in range(3) for e in await a.committer.submit(new_run(f"run_{n}", topics=TOPICS))]
        assert [e.id for e in await until(sub, len(written))] == written


async def test_a_listener_whose_connection_is_killed_listens_again_and_misses_nothing() -> None:
    # an hour between timer reads: here only notifications (and a reconnect) can deliver
    async with (
        postgres_schema(own_channel=True) as schema, process(schema) as a, process(schema, poll_seconds=3600) as b
    ):
        sub = b.bus.subscribe(tenant_id="acme")
        first = await a.committer.submit(new_run("run_before", topics=TOPICS))
        assert [e.id for e in await until(sub, len(first))] == [e.id for e in first]  # heard
        await until_true(lambda: b.feed.listener_pid is not None)
        async with schema.connect() as conn:
            killed = await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": b.feed.listener_pid})
            assert killed.scalar()
        lost = await a.committer.submit(new_run("run_while_deaf", topics=TOPICS))  # may go unheard
        assert [e.id for e in await until(sub, len(lost))] == [e.id for e in lost]
        await until_true(lambda: b.feed.listens == 2 and b.feed.listener_pid is not None)
        after = await a.committer.submit(new_run("run_after", topics=TOPICS))
        assert [e.id for e in await until(sub, len(after))] == [e.id for e in after]  # heard again


async def test_a_subscriber_receives_what_commits_after_it_subscribed_not_what_went_before() -> None:
    async with postgres_schema(own_channel=True) as schema, process(schema) as a:
        for n in range(3):  # nobody listens: the follower only moves its place
            await a.committer.submit(new_run(f"run_early_{n}", topics=TOPICS))
        await a.bus.drain()
        sub = a.bus.subscribe(tenant_id="acme")
        later = await a.committer.submit(new_run("run_later", topics=TOPICS))
        await a.bus.drain()
        sub.close()
        assert [e.id async for e in sub] == [e.id for e in later]
