"""A broken playbook file never takes the service down: it is reported and the rest serve."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import CATALOG, PIPELINE, TOKENS
from config.settings import Settings
from tests.api.conftest import exception_body
from tests.config_copies import config_with


async def test_the_service_starts_and_serves_with_one_broken_playbook(tmp_path):
    broken = "id: zz-broken\nname: Broken\nsteps:\n  - id: one\n    name: One\n    action: teleport\n"
    config = config_with(tmp_path / "config", {"zz-broken.yaml": broken})
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="s" * 40))
    [problem] = app[CATALOG].problems
    assert problem.path.name == "zz-broken.yaml" and problem.line == 6 and problem.field == "steps[0].action"
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="acme", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.post("/api/v1/exceptions", json=exception_body(), headers=headers)
        assert response.status == 202
        await app[PIPELINE].drain()
        run = await (await client.get(f"/api/v1/runs/{(await response.json())['run_id']}", headers=headers)).json()
        assert run["status"] == "completed" and run["playbook_id"] == "payment-card-declined"
