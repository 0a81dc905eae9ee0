"""The copilot's threads: a conversation's messages, so a follow-up sees the earlier turns. The
key is (tenant, thread id): a thread id another tenant uses is simply not found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.tables import copilot_threads


class CopilotThreadRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def messages(self, tenant_id: str, thread_id: str) -> list[dict[str, Any]] | None:
        """The thread's messages in order, or None when this tenant has no such thread."""
        query = select(copilot_threads.c.messages).where(
            copilot_threads.c.tenant_id == tenant_id, copilot_threads.c.id == thread_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return list(row.messages) if row else None

    async def save(
        self, tenant_id: str, thread_id: str, messages: list[dict[str, Any]], now: datetime, *, is_new: bool
    ) -> None:
        async with self._engine.begin() as conn:
            if is_new:
                await conn.execute(insert(copilot_threads).values(
                    tenant_id=tenant_id, id=thread_id, messages=messages, created_at=now, updated_at=now))
            else:
                await conn.execute(
                    update(copilot_threads)
                    .where(copilot_threads.c.tenant_id == tenant_id, copilot_threads.c.id == thread_id)
                    .values(messages=messages, updated_at=now)
                )
