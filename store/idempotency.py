"""Looking up the remembered first answer to a request made with an ``Idempotency-Key``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.records import IdempotentResponse
from store.tables import idempotency_keys


class IdempotencyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant_id: str, key: str) -> IdempotentResponse | None:
        query = select(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return IdempotentResponse(**row._mapping) if row else None
