"""The scheduler's leader lock on PostgreSQL: one holder at a time, and a holder that releases
it (a clean stop, or stepping down) frees it at once for another process, whatever else still
refers to its connection (a traceback, a reference cycle the garbage collector has not reached)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from store.leader_lock import AdvisoryLeaderLock


async def test_a_released_lock_is_free_for_another_process_at_once(db: AsyncEngine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("one process serves a SQLite file, and it always leads")
    first, second = AdvisoryLeaderLock(db, "test.lock"), AdvisoryLeaderLock(db, "test.lock")
    assert await first.acquire()
    assert not await second.acquire()
    assert first.connection is not None
    raw = (await first.connection.get_raw_connection()).dbapi_connection
    session = raw.driver_connection if raw is not None else None  # still referred to

    await first.release()
    assert session is not None and session.is_closed()
    assert await second.acquire()
    assert not await first.acquire()
    await second.release()
