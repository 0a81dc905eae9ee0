"""Webhook endpoints a tenant subscribed, with their signing secrets. Every read takes the tenant
first; a change is written only over the version it was made from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from domain.errors import WebhookChanged
from store.sqlite_threads import in_connection, in_transaction
from store.tables import deliveries, webhook_endpoints


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    tenant_id: str
    id: str
    url: str
    description: str
    topics: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during its overlap."""
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


def endpoint_from_row(row: Any) -> EndpointRecord:
    return EndpointRecord(**{c.name: row._mapping[c.name] for c in webhook_endpoints.columns})


def _one(tenant_id: str, endpoint_id: str) -> Any:
    return (webhook_endpoints.c.tenant_id == tenant_id) & (webhook_endpoints.c.id == endpoint_id)


class EndpointRepository:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    async def create(self, endpoint: EndpointRecord) -> None:
        row = asdict(endpoint)
        await in_transaction(self._engine, lambda conn: conn.execute(insert(webhook_endpoints).values(row)))

    async def get(self, tenant_id: str, endpoint_id: str) -> EndpointRecord | None:
        def read(conn: Connection) -> EndpointRecord | None:
            row = conn.execute(select(webhook_endpoints).where(_one(tenant_id, endpoint_id))).first()
            return endpoint_from_row(row) if row else None

        return await in_connection(self._engine, read)

    async def list_for(self, tenant_id: str) -> list[EndpointRecord]:
        query = (select(webhook_endpoints).where(webhook_endpoints.c.tenant_id == tenant_id)
                 .order_by(webhook_endpoints.c.id))
        return await in_connection(self._engine, lambda conn: [endpoint_from_row(r) for r in conn.execute(query)])

    async def change(self, before: EndpointRecord, **values: Any) -> EndpointRecord:
        """Write ``values`` over ``before`` (version bumped); ``WebhookChanged`` (409) if it changed meanwhile."""
        values["version"] = before.version + 1
        query = (update(webhook_endpoints)
                 .where(_one(before.tenant_id, before.id), webhook_endpoints.c.version == before.version)
                 .values(values))

        def write(conn: Connection) -> None:
            if conn.execute(query).rowcount != 1:
                raise WebhookChanged(f"webhook endpoint {before.id} changed meanwhile; read it again and retry")

        await in_transaction(self._engine, write)
        return EndpointRecord(**{**asdict(before), **values})

    async def delete(self, tenant_id: str, endpoint_id: str, now: datetime) -> bool:
        """Remove the endpoint; its deliveries still waiting are cancelled with it."""

        def write(conn: Connection) -> bool:
            gone = conn.execute(webhook_endpoints.delete().where(_one(tenant_id, endpoint_id))).rowcount == 1
            if gone:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.tenant_id == tenant_id, deliveries.c.endpoint_id == endpoint_id,
                           deliveries.c.status == "pending")
                    .values(status="cancelled", next_attempt_at=None, last_error="endpoint deleted", updated_at=now)
                )
            return gone

        return await in_transaction(self._engine, write)
