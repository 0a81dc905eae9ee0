"""SQLite's hot reads and group commits, each in one call into a thread of its own.

Through aiosqlite every statement is several trips between the event loop and the driver's
thread (cursor, execute, fetch, close, rollback: five for one read; about three per statement
of a group commit), and the pool's ten driver threads fight the event loop for the GIL under
load (py-spy, ``bench/http.py``). Here a unit of work is a plain function over a synchronous
SQLAlchemy connection (the same Core statements and column types), sent whole to a thread that
owns its connection: one trip per read and one per commit batch. Reads and writes have a thread
each, so a long commit never holds up a read (WAL lets them overlap), and a thread wakes once
for all the work queued while it was busy (``store/work_thread.py``).

``in_connection`` and ``in_transaction`` are the door: on an engine ``open_engine`` gave threads
(an SQLite file) the work goes to them; on any other engine it runs through ``run_sync`` on an
async connection, so callers write one function for both stores.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import orjson
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from store.types import dumps_json
from store.work_thread import WorkThread

T = TypeVar("T")
Pragmas = Callable[..., None]


class SqliteThreads:
    """A synchronous engine on the same file and two single-thread executors (reads, writes)."""

    def __init__(self, url: str, pragmas: Pragmas) -> None:
        self.engine = create_engine(
            make_url(url).set(drivername="sqlite+pysqlite"),
            json_serializer=dumps_json, json_deserializer=orjson.loads,
            # each connection lives in one executor's thread, but the pool may hand it to the other
            connect_args={"check_same_thread": False},
        )
        event.listen(self.engine, "connect", pragmas)
        self._reads = WorkThread("sqlite-reads")
        self._writes = WorkThread("sqlite-writes")

    def _read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)

    def _write(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._reads.run(partial(self._read, work))

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._writes.run(partial(self._write, work))

    def close(self) -> None:
        """Stop the threads (after the work already sent) and close their connections."""
        self._reads.stop()
        self._writes.stop()
        self.engine.dispose()


_threads: weakref.WeakKeyDictionary[AsyncEngine, SqliteThreads] = weakref.WeakKeyDictionary()


def attach(engine: AsyncEngine, url: str, pragmas: Pragmas) -> None:
    """Give ``engine`` (on an SQLite file) its threads. Disposing the engine closes their
    connections too (they reopen if it is used again); the threads stop when it is collected."""
    threads = _threads[engine] = SqliteThreads(url, pragmas)
    weakref.finalize(engine, threads.close)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: threads.engine.dispose())


async def in_connection(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` on a connection without a transaction of its own: for reads."""
    threads = _threads.get(engine)
    if threads is not None:
        return await threads.read(work)
    async with engine.connect() as conn:
        return await conn.run_sync(work)


async def in_transaction(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` in one transaction, committed when it returns, rolled back if it raises."""
    threads = _threads.get(engine)
    if threads is not None:
        return await threads.write(work)
    async with engine.begin() as conn:
        return await conn.run_sync(work)


def threads_of(engine: AsyncEngine) -> SqliteThreads | None:
    """The engine's threads, or ``None``: for tests that check which path a store takes."""
    return _threads.get(engine)
