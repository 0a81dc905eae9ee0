"""Event ids are issued in commit order on PostgreSQL, across processes: a reader that follows the
log with ``id > last seen`` (as a stream replaying after ``Last-Event-ID`` does) never skips an
event that commits later with a smaller id. Two engines, each with its own connection pool, stand
for two server processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.writer import write_batch
from tests.postgres_schemas import second_process as another_process
from tests.store.test_store import new_run

WRITERS_PER_PROCESS = 4
WRITES_PER_WRITER = 40


@pytest.fixture
async def second_process(db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    if db.dialect.name != "postgresql":
        pytest.skip("on SQLite one process writes, under the database's only write lock")
    async with another_process(db) as other:
        yield other


async def test_a_follower_of_the_log_never_skips_an_id(db: AsyncEngine, second_process: AsyncEngine) -> None:
    done = asyncio.Event()
    seen: list[int] = []

    async def write(engine: AsyncEngine, name: str) -> None:
        for n in range(WRITES_PER_WRITER):
            topics = ("run.received", "triage.completed", "policy.evaluated")
            [outcome] = await write_batch(engine, [new_run(f"run_{name}_{n:03d}", topics=topics)])
            assert not isinstance(outcome, Exception), outcome

    async def follow() -> None:
        async with db.connect() as conn:
            while True:
                finished = done.is_set()
                rows = await conn.execute(text("SELECT id FROM events WHERE id > :last ORDER BY id"),
                                          {"last": seen[-1] if seen else 0})
                seen.extend(rows.scalars())
                await conn.commit()  # a new snapshot for the next read
                if finished:
                    return

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(engine, f"{p}{w}") for p, engine in enumerate((db, second_process))
                           for w in range(WRITERS_PER_PROCESS)))
    done.set()
    await follower
    async with db.connect() as conn:
        every = list((await conn.execute(text("SELECT id FROM events ORDER BY id"))).scalars())
    assert len(every) == 2 * WRITERS_PER_PROCESS * WRITES_PER_WRITER * 3
    assert seen == every, "the follower skipped an id that committed after a larger one"
