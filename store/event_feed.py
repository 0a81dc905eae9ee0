"""The committed log as a feed for processes sharing one PostgreSQL: the newest id, the events after
an id in id order, and a LISTEN that reports each commit's newest id (``store/writer.py`` sends
one ``pg_notify`` per commit that wrote events, in the same transaction).

Ids are issued in commit order (``store/writer.py``, ``EVENT_ORDER_LOCK``), so reading
``id > last`` in id order never skips an event that commits later; a notification only says
*when* to read, so one that is lost delays an event and cannot drop it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.events import event_from_row
from store.records import EventRecord
from store.tables import events

log = structlog.get_logger(__name__)

EVENT_CHANNEL = "autopilot_events"
"""The default channel; a deployment sets its own (``event_channel``) when several share a database."""
CHANNEL_OPTION = "autopilot_event_channel"
"""The engine's execution option naming its channel (``open_engine(url, execution_options=...)``)."""
RECONNECT_SECONDS = 1.0
PING_SECONDS = 30.0
"""How often an idle listener checks its connection, so a silently dropped one is replaced."""


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def event_channel(bind: Connection | AsyncConnection | AsyncEngine) -> str:
    """The channel ``bind``'s engine was opened with (``CHANNEL_OPTION``), else the default."""
    if isinstance(bind, AsyncConnection):
        options = bind.sync_connection.get_execution_options() if bind.sync_connection else {}
    else:
        options = bind.get_execution_options()
    return str(options.get(CHANNEL_OPTION, EVENT_CHANNEL))


class PostgresEventFeed:
    """Implements ``eventbus.feed.EventFeed`` over the ``events`` table and ``LISTEN``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.channel = event_channel(engine)
        self.listens = 0
        """Times a listener connection started listening (reconnects show as more than one)."""
        self.listener_pid: int | None = None
        """The server process of the listening connection, while there is one."""

    async def newest(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(events.c.id), 0)))).scalar_one())

    async def after(self, last: int, limit: int) -> list[EventRecord]:
        query = select(events).where(events.c.id > last).order_by(events.c.id).limit(limit)
        async with self._engine.connect() as conn:
            return [event_from_row(row) for row in await conn.execute(query)]

    async def watch(self, wake: Callable[[int | None], None]) -> None:
        """Call ``wake(newest id)`` for each notification, until cancelled. The connection is one
        of the engine's, held for as long as it listens and discarded after; when it drops, a new
        one listens and ``wake(None)`` says that notifications may have been missed meanwhile."""
        while True:
            try:
                await self._listen_once(wake)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event listener lost its connection", channel=self.channel, error=str(exc))
            wake(None)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_once(self, wake: Callable[[int | None], None]) -> None:
        def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            wake(int(payload) if payload.isdigit() else None)

        conn = await self._engine.connect()
        try:
            raw: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's Connection
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            raw.add_termination_listener(lambda _conn: _settle(lost))
            await raw.add_listener(self.channel, heard)
            self.listens, self.listener_pid = self.listens + 1, raw.get_server_pid()
            wake(None)  # a commit before LISTEN took effect was not announced to us
            while not lost.done():
                try:
                    await asyncio.wait_for(asyncio.shield(lost), PING_SECONDS)
                except TimeoutError:
                    await asyncio.wait_for(raw.fetchval("SELECT 1"), PING_SECONDS)
        finally:
            self.listener_pid = None
            await conn.invalidate()  # never back to the pool still listening, or dead
            await conn.close()
