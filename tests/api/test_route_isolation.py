"""Walks the application's route table, so no route can be forgotten: every /api/v1 route needs a
token (401 without), and with another tenant's token every id of the first tenant answers 404."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app, route_specs
from api.keys import TOKENS
from config.settings import Settings
from tests.api.conftest import Api
from tests.api.route_bodies import BODIES, FLAGGED
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with

SHARED_IDS = {"workflow_id", "playbook_id"}
"""Path ids that name shared configuration, not a tenant's data: with only these, another
tenant's call acts on its own data (checked below), so 404 is not expected."""


@pytest.fixture
async def tenants(tmp_path: Path) -> AsyncIterator[tuple[Api, Api, dict[str, str]]]:
    config = config_with(tmp_path / "config", {"test-review.yaml": REVIEW_PLAYBOOK}, [ACCOUNT_FLAGGED_RULE])
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="r" * 40))
    async with TestClient(TestServer(app)) as client:
        def as_tenant(tenant: str) -> Api:
            token = app[TOKENS].mint(tenant=tenant, subject="ann", roles=["admin"], ttl=timedelta(hours=1))
            return Api(client, app, token)

        owner, stranger = as_tenant("globex"), as_tenant("initech")
        _, answer, _ = await owner.call("POST", "/api/v1/exceptions", json=FLAGGED)
        assert answer["status"] == "waiting_for_input"
        status, created, _ = await owner.call("POST", "/api/v1/schedules", json={
            "id": "owners-digest", "workflow": "feedback_digest", "paused": True,
            "trigger": {"type": "cron", "expression": "0 7 * * *"}})
        assert status == 201, created
        status, endpoint, _ = await owner.call("POST", "/api/v1/webhooks", json={
            "url": "https://hooks.example.com/owner", "topics": ["run.*"]})
        assert status == 201, endpoint
        status, test_message, _ = await owner.call("POST", f"/api/v1/webhooks/{endpoint['id']}/test")
        assert status == 202, test_message
        ids = {"run_id": answer["run_id"], "step_id": "review", "workflow_id": "exception_pipeline",
               "schedule_id": created["id"], "playbook_id": "test-review", "endpoint_id": endpoint["id"],
               "delivery_id": test_message["delivery_id"]}
        yield owner, stranger, ids


def api_routes() -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in route_specs() if s.path.startswith("/api/v1")]


async def test_every_api_route_needs_a_token(tenants):
    owner, _, ids = tenants
    for method, template in api_routes():
        path = template.format(**ids)
        response = await owner.client.request(method, path, json=BODIES.get((method, template)))
        assert response.status == 401, (method, template)
        assert (await response.json())["error"]["code"] == "UNAUTHORIZED"


async def test_another_tenant_gets_404_for_every_id_of_the_first(tenants):
    owner, stranger, ids = tenants
    _, before, _ = await owner.call("GET", f"/api/v1/runs/{ids['run_id']}")
    _, schedule_before, _ = await owner.call("GET", f"/api/v1/schedules/{ids['schedule_id']}")
    _, endpoint_before, _ = await owner.call("GET", f"/api/v1/webhooks/{ids['endpoint_id']}")
    for method, template in api_routes():
        names = set(re.findall(r"{(\w+)}", template))
        if method == "POST":
            assert (method, template) in BODIES, f"add a body for {method} {template}"
        status, body, _ = await stranger.call(method, template.format(**ids), json=BODIES.get((method, template)))
        if names - SHARED_IDS:
            assert status == 404, (method, template, status, body)
        elif template.startswith("/api/v1/copilot/"):  # no model configured here; tests/copilot covers its tools
            assert status == 503 and body["error"]["code"] == "COPILOT_UNAVAILABLE", (template, status, body)
        elif method == "GET":
            assert status == 200, (method, template)
            assert ids["run_id"] not in str(body), (method, template)
        else:
            assert status in (200, 201, 202), (method, template, status, body)
    _, after, _ = await owner.call("GET", f"/api/v1/runs/{ids['run_id']}")
    assert after == before, "another tenant's calls changed the first tenant's run"
    _, schedule_after, _ = await owner.call("GET", f"/api/v1/schedules/{ids['schedule_id']}")
    assert schedule_after == schedule_before, "another tenant's calls changed the first tenant's schedule"
    _, endpoint_after, _ = await owner.call("GET", f"/api/v1/webhooks/{ids['endpoint_id']}")
    assert endpoint_after["version"] == endpoint_before["version"], "another tenant changed the first's webhook"
    _, page, _ = await owner.call("GET", "/api/v1/runs")
    assert [r["id"] for r in page["items"]] == [ids["run_id"]]
