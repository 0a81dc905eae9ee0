"""Which process leads, when several serve one database. On PostgreSQL the leader holds a
session-level advisory lock on a connection of its own, taken out of the pool: the server
releases the lock when that session ends, so a leader that is killed (or whose connection is
cut) frees it at once and another process takes it at its next try. The lock's key is the name
plus the schema, so deployments (and test runs) in other schemas of the database do not contend.
On SQLite one process serves the file (``store.sole_process``), so it always leads."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog
from sqlalchemy import CursorResult, TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)

_try_lock = text("SELECT pg_try_advisory_lock(hashtextextended(:name || '/' || current_schema(), 0))")
_alive = text("SELECT 1")
# A host that vanishes without closing its socket must not keep the lock for hours: the server
# probes the idle session after 4 s and drops it after 3 missed probes 2 s apart (~10 s).
_keepalives = (
    "SET tcp_keepalives_idle = 4", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)


class LeaderLock(Protocol):
    contested: bool
    """Whether another process could hold it (otherwise there is nothing to retry or watch)."""

    async def acquire(self) -> bool:
        """Try to take the lock, without waiting; whether it is held now."""
        ...

    async def held(self) -> bool:
        """Whether the lock is still ours (its connection answers)."""
        ...

    async def release(self) -> None: ...


class SoleLeader:
    """The one process on a SQLite file: always the leader."""

    contested = False

    async def acquire(self) -> bool:
        return True

    async def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLeaderLock:
    """``pg_try_advisory_lock`` on a dedicated connection, kept open between tries (a process
    that does not lead asks again on the same session). ``timeout`` bounds each question, so a
    connection that hangs counts as lost."""

    contested = True

    def __init__(self, engine: AsyncEngine, name: str, *, timeout: float = 5.0) -> None:
        self._engine, self.name, self._timeout = engine, name, timeout
        self._conn: AsyncConnection | None = None
        self._session: Any = None
        """The driver's connection under ``_conn``, which ``_drop`` ends itself."""
        self._held = False

    @property
    def connection(self) -> AsyncConnection | None:
        """The lock's session (tests end it to stand for a leader that died)."""
        return self._conn

    async def acquire(self) -> bool:
        if self._held:
            return await self.held()
        try:
            conn = await self._connection()
            self._held = bool((await self._ask(conn, _try_lock, name=self.name)).scalar_one())
        except Exception as exc:
            log.warning("could not ask for the leader lock", lock=self.name, error=str(exc))
            await self._drop()
        return self._held

    async def held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            await self._ask(self._conn, _alive)
        except Exception as exc:
            log.warning("the leader lock's connection was lost", lock=self.name, error=str(exc))
            await self._drop()
        return self._held

    async def release(self) -> None:
        """Closing the session releases the lock."""
        await self._drop()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            session = (await conn.get_raw_connection()).driver_connection
            # Out of the pool: closing it ends the session (and the lock) rather than pooling it.
            await conn.run_sync(lambda sync: sync.detach())
            self._conn, self._session = conn, session
            for statement in _keepalives:
                await self._ask(conn, text(statement))
        return self._conn

    async def _ask(self, conn: AsyncConnection, statement: TextClause, **params: object) -> CursorResult[Any]:
        result = await asyncio.wait_for(conn.execute(statement, params), self._timeout)
        await asyncio.wait_for(conn.commit(), self._timeout)
        return result

    async def _drop(self) -> None:
        conn, session, self._conn, self._session, self._held = self._conn, self._session, None, None, False
        # Invalidating a detached connection does not close it: the session (and the lock) would
        # last until the garbage collector reached it. End it here, without waiting on the server.
        if session is not None:
            session.terminate()
        if conn is not None:
            try:
                await asyncio.wait_for(conn.invalidate(), self._timeout)
            except Exception:  # already gone: the server has ended the session
                pass


def leader_lock(engine: AsyncEngine, name: str, *, timeout: float = 5.0) -> LeaderLock:
    """The lock for ``engine``'s backend."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLeaderLock(engine, name, timeout=timeout)
    return SoleLeader()
