"""The database threads: work runs on its thread, answers and errors come back to their callers,
and an SQLite file's hot reads and commits go through them while other engines take run_sync."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from store.database import migrate, open_engine
from store.runs import RunRepository
from store.sqlite_threads import in_connection, in_transaction, threads_of
from store.work_thread import WorkThread
from store.writer import write_batch
from tests.store.test_store import new_run


async def test_each_caller_gets_its_own_answer_or_error_when_many_queue_at_once() -> None:
    worker = WorkThread("test-work")
    seen_on: set[str] = set()

    def work(n: int) -> int:
        seen_on.add(threading.current_thread().name)
        if n % 7 == 0:
            raise ValueError(f"no {n}")
        return n * n

    results = await asyncio.gather(*[worker.run(partial(work, n)) for n in range(1, 200)], return_exceptions=True)
    worker.stop()

    for n, result in enumerate(results, start=1):
        if n % 7 == 0:
            assert isinstance(result, ValueError) and str(result) == f"no {n}"
        else:
            assert result == n * n
    assert seen_on == {"test-work"}


async def test_a_caller_that_gave_up_does_not_break_the_others() -> None:
    worker = WorkThread("test-cancel")
    gate = threading.Event()
    blocked = asyncio.ensure_future(worker.run(gate.wait))
    abandoned = asyncio.ensure_future(worker.run(lambda: "too late"))
    kept = asyncio.ensure_future(worker.run(lambda: "kept"))
    await asyncio.sleep(0.05)
    abandoned.cancel()
    gate.set()
    assert await blocked is True
    assert await kept == "kept"
    worker.stop()


async def test_an_sqlite_file_reads_and_commits_on_its_threads(tmp_path: Path) -> None:
    db = open_engine(f"sqlite+aiosqlite:///{tmp_path / 'threads.db'}")
    try:
        await migrate(db)
        assert threads_of(db) is not None
        [written] = await write_batch(db, [new_run("run_1")])
        assert not isinstance(written, Exception)

        def names(conn: Connection) -> tuple[str, list[str]]:
            return threading.current_thread().name, list(conn.execute(text("SELECT id FROM runs")).scalars())

        assert await in_connection(db, names) == ("sqlite-reads", ["run_1"])
        def delete_then_fail(conn: Connection) -> None:
            conn.execute(text("DELETE FROM runs"))
            raise RuntimeError("the work failed")

        with pytest.raises(RuntimeError):
            await in_transaction(db, delete_then_fail)
        assert (await RunRepository(db).get("acme", "run_1")) is not None  # the failed transaction rolled back
    finally:
        await db.dispose()


async def test_an_in_memory_database_takes_the_async_connection() -> None:
    db = open_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert threads_of(db) is None
        assert await in_connection(db, lambda conn: conn.execute(text("SELECT 41 + 1")).scalar_one()) == 42
    finally:
        await db.dispose()
