"""On PostgreSQL every commit that wrote events sends one notification, its newest event id, on
the engine's channel: one per commit however many runs and events it holds (NOTIFY takes a
global lock while committing), none for a commit without events or one that rolled back."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from store.event_feed import event_channel
from store.writer import write_batch
from tests.eventbus.conftest import postgres_schema
from tests.store.test_store import advance, committed, new_run

TOPICS = ("run.received", "triage.completed", "policy.evaluated")


async def test_one_notification_per_commit_carrying_its_newest_id() -> None:
    async with postgres_schema() as engine:
        channel, heard, ended = event_channel(engine), list[str](), asyncio.Event()

        def hear(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            if payload == "end":
                ended.set()
            else:
                heard.append(payload)

        async with engine.connect() as listening:
            raw = (await listening.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.add_listener(channel, hear)

            first = [new_run(f"run_{n}", topics=TOPICS) for n in range(5)]
            outcomes = await write_batch(engine, first)  # one group commit: 5 runs, 15 events
            one_commit = [e.id for outcome in outcomes for e in committed(outcome)]
            # a taken run id sinks the batch; the other write then commits alone, the taken one not at all
            retried = await write_batch(engine, [new_run("run_0"), new_run("run_alone", topics=TOPICS)])
            alone = committed(retried[1])
            await write_batch(engine, [advance(first[1], "triaged")])  # a commit without events
            async with engine.begin() as conn:  # every notification before this one has arrived
                await conn.execute(text("SELECT pg_notify(:channel, 'end')"), {"channel": channel})
            await asyncio.wait_for(ended.wait(), 20)
            await raw.remove_listener(channel, hear)

        assert isinstance(retried[0], Exception)
        assert heard == [str(max(one_commit)), str(alone[-1].id)]
