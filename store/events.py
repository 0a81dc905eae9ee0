"""Reading the run log, always within one tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.records import EventRecord
from store.sqlite_threads import in_connection
from store.tables import events


def event_from_row(row: Any) -> EventRecord:
    return EventRecord(**{c.name: row._mapping[c.name] for c in events.columns})


class EventRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_run(
        self, tenant_id: str, run_id: str, *, after_seq: int = 0, limit: int = 500
    ) -> list[EventRecord]:
        query = (
            select(events)
            .where(events.c.tenant_id == tenant_id, events.c.run_id == run_id)
            .where(events.c.seq > after_seq)
            .order_by(events.c.seq)
            .limit(limit)
        )
        return await in_connection(self._engine, lambda conn: [event_from_row(row) for row in conn.execute(query)])

    async def audit(
        self,
        tenant_id: str,
        *,
        actor: str | None = None,
        run_id: str | None = None,
        topic_prefix: str | None = None,
        topic: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """What people and the system did (not the agents), newest first; ``before_id`` pages."""
        query = select(events).where(events.c.tenant_id == tenant_id, events.c.actor.not_like("agent:%"))
        if actor:
            query = query.where(events.c.actor == actor)
        if run_id:
            query = query.where(events.c.run_id == run_id)
        if topic:
            query = query.where(events.c.topic == topic)
        if topic_prefix:
            query = query.where(events.c.topic.startswith(topic_prefix, autoescape=True))
        if since:
            query = query.where(events.c.created_at >= since)
        if until:
            query = query.where(events.c.created_at < until)
        if before_id:
            query = query.where(events.c.id < before_id)
        query = query.order_by(events.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [event_from_row(row) for row in await conn.execute(query)]

    async def after(
        self, tenant_id: str, after_id: int, *, run_id: str | None = None, limit: int = 500
    ) -> list[EventRecord]:
        """The tenant's events (one run's, with ``run_id``) with a global id above ``after_id``, in
        log order: what a live stream replays after ``Last-Event-ID`` or catches up on."""
        query = select(events).where(events.c.tenant_id == tenant_id, events.c.id > after_id)
        if run_id is not None:
            query = query.where(events.c.run_id == run_id)
        query = query.order_by(events.c.id).limit(limit)
        async with self._engine.connect() as conn:
            return [event_from_row(row) for row in await conn.execute(query)]
