"""What the webhook API does: endpoints (created with a secret shown once, changed, deleted,
their secret rotated with an overlap), a test message, and sending deliveries again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from yarl import URL

from delivery.address_guard import Network, literal_refusal
from delivery.signing import new_secret
from domain.errors import DeliveryNotFound, DeliveryPending, ValidationFailed, WebhookNotFound
from store.deliveries import AttemptRecord, DeliveryFilters, DeliveryRecord, DeliveryRepository
from store.outbox import pending_row
from store.webhook_endpoints import EndpointRecord, EndpointRepository

TEST_TOPIC = "webhook.test"


class WebhookService:
    def __init__(self, endpoints: EndpointRepository, deliveries: DeliveryRepository, *,
                 clock: Callable[[], datetime], new_id: Callable[[str], str], allowed: tuple[Network, ...],
                 retry_window: timedelta, wake: Callable[[], None] = lambda: None) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self._clock = clock
        self._new_id = new_id
        self._allowed = allowed
        self._retry_window = retry_window
        self._wake = wake

    def _reachable(self, url: str) -> None:
        if (why := literal_refusal(URL(url).host or "", self._allowed)) is not None:
            raise ValidationFailed("the webhook's address may not be reached", [{
                "field": "body.url", "message": f"{why}; the operator may allow it (delivery_allowed_addresses)"}])

    async def create(self, tenant: str, actor: str, *, url: str, topics: list[str], description: str,
                     enabled: bool) -> EndpointRecord:
        self._reachable(url)
        now = self._clock()
        endpoint = EndpointRecord(
            tenant_id=tenant, id=self._new_id("whk"), url=url, description=description, topics=topics,
            secret=new_secret(), previous_secret=None, previous_secret_until=None, enabled=enabled,
            disabled_reason=None, consecutive_failures=0, version=1, created_at=now, created_by=actor, updated_at=now,
        )
        await self.endpoints.create(endpoint)
        return endpoint

    async def get(self, tenant: str, endpoint_id: str) -> EndpointRecord:
        endpoint = await self.endpoints.get(tenant, endpoint_id)
        if endpoint is None:
            raise WebhookNotFound(f"no webhook endpoint {endpoint_id}")
        return endpoint

    async def change(self, tenant: str, endpoint_id: str, changes: dict[str, Any]) -> EndpointRecord:
        endpoint = await self.get(tenant, endpoint_id)
        if "url" in changes:
            self._reachable(changes["url"])
        if changes.get("enabled") and not endpoint.enabled:
            changes.update(consecutive_failures=0, disabled_reason=None)
        return await self.endpoints.change(endpoint, **changes, updated_at=self._clock())

    async def delete(self, tenant: str, endpoint_id: str) -> None:
        if not await self.endpoints.delete(tenant, endpoint_id, self._clock()):
            raise WebhookNotFound(f"no webhook endpoint {endpoint_id}")

    async def rotate(self, tenant: str, endpoint_id: str, overlap_seconds: float) -> EndpointRecord:
        """A new secret; the one it replaces keeps signing for ``overlap_seconds`` beside it."""
        endpoint = await self.get(tenant, endpoint_id)
        now = self._clock()
        until = now + timedelta(seconds=overlap_seconds) if overlap_seconds else None
        return await self.endpoints.change(
            endpoint, secret=new_secret(), previous_secret=endpoint.secret if until else None,
            previous_secret_until=until, updated_at=now,
        )

    async def send_test(self, tenant: str, endpoint_id: str, actor: str) -> DeliveryRecord:
        endpoint = await self.get(tenant, endpoint_id)
        now = self._clock()
        delivery_id = self._new_id("dlv")
        message = {"endpoint_id": endpoint.id, "sent_by": actor, "note": "a test message from Autopilot"}
        written = await self.deliveries.add(pending_row(delivery_id, tenant, endpoint.id, TEST_TOPIC, now,
                                                        self._retry_window, message=message))
        self._wake()
        return written

    async def delivery(self, tenant: str, delivery_id: str) -> tuple[DeliveryRecord, list[AttemptRecord]]:
        found = await self.deliveries.get(tenant, delivery_id)
        if found is None:
            raise DeliveryNotFound(f"no delivery {delivery_id}")
        return found

    async def list_deliveries(self, tenant: str, limit: int, filters: DeliveryFilters) -> list[DeliveryRecord]:
        return await self.deliveries.list_for(tenant, limit=limit, **filters)

    async def redeliver(self, tenant: str, delivery_id: str) -> DeliveryRecord:
        """Send one delivery again (delivered, dead or cancelled), with a new retry window."""
        delivery, _ = await self.delivery(tenant, delivery_id)
        if delivery.status == "pending":
            raise DeliveryPending(f"delivery {delivery_id} is already waiting to be sent")
        now = self._clock()
        await self.deliveries.redeliver(tenant, now=now, give_up_at=now + self._retry_window, delivery_id=delivery_id)
        self._wake()
        return (await self.delivery(tenant, delivery_id))[0]

    async def redeliver_dead(self, tenant: str, endpoint_id: str) -> int:
        await self.get(tenant, endpoint_id)
        now = self._clock()
        count = await self.deliveries.redeliver(tenant, now=now, give_up_at=now + self._retry_window,
                                                dead_of_endpoint=endpoint_id)
        if count:
            self._wake()
        return count
