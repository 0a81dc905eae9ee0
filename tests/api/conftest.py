"""An app on a real SQLite file behind aiohttp's test server, with tokens for two tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import PIPELINE, TOKENS
from config.settings import Settings


class Api:
    """A test client that speaks as one tenant's user."""

    def __init__(self, client: TestClient, app: web.Application, token: str) -> None:
        self.client, self.app, self.token = client, app, token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        response = await self.client.request(method, path, json=json, data=data, headers=self.headers(headers))
        if response.content_type == "text/event-stream":  # an event stream never ends: status and headers only
            response.close()
            return response.status, None, response.headers
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body, response.headers

    async def settle(self) -> None:
        await self.app[PIPELINE].drain()


def exception_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "source": "stripe",
        "source_id": "ch_3PqLx2",
        "domain": "payments",
        "type": "payment.failed",
        "code": "card_declined",
        "amount": "42.50",
        "currency": "USD",
        "sla_deadline": (datetime.now(UTC) + timedelta(hours=6)).isoformat(),
        "context": {"customer_email": "maria.lopez@example.com", "order_id": "SO-100231"},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[web.Application]:
    yield create_app(Settings(data_dir=tmp_path / "data", jwt_secret="test-secret-" + "x" * 32))


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def token_for(app: web.Application) -> Callable[..., str]:
    def mint(tenant: str = "acme", subject: str = "ann", roles: tuple[str, ...] = ("admin",)) -> str:
        return app[TOKENS].mint(tenant=tenant, subject=subject, roles=list(roles), ttl=timedelta(hours=1))

    return mint


@pytest.fixture
def api(client: TestClient, app: web.Application, token_for: Callable[..., str]) -> Api:
    return Api(client, app, token_for("acme", "ann"))


@pytest.fixture
def other_tenant(client: TestClient, app: web.Application, token_for: Callable[..., str]) -> Api:
    return Api(client, app, token_for("globex", "bob"))


@pytest.fixture
def ingest(api: Api) -> Callable[..., Any]:
    async def post(**overrides: Any) -> str:
        status, body, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body(**overrides))
        assert status == 202, body
        return body["run_id"]

    return post


@pytest.fixture
def approver(client: TestClient, app: web.Application, token_for: Callable[..., str]) -> Api:
    """Someone else in the same tenant who may decide paused runs: who started a run may not
    approve it."""
    return Api(client, app, token_for("acme", "lee", ("approver",)))
