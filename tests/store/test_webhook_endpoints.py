"""Webhook endpoints on every backend: a change is written only over the version it was made
from, and an endpoint is found only within its tenant."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import WebhookChanged
from store.webhook_endpoints import EndpointRepository
from tests.store.test_outbox import endpoint
from tests.store.test_store import T0


async def test_a_change_over_a_stale_version_is_refused(db: AsyncEngine) -> None:
    repo = EndpointRepository(db)
    await repo.create(endpoint("whk_1", "acme", ["run.*"]))
    read = await repo.get("acme", "whk_1")
    assert read is not None
    changed = await repo.change(read, description="first", updated_at=T0)
    assert changed.version == 2 and (await repo.get("acme", "whk_1")) == changed
    with pytest.raises(WebhookChanged):
        await repo.change(read, description="second, from the same read", updated_at=T0)
    assert await repo.get("globex", "whk_1") is None
