"""Webhook subscriptions end to end: the real app on an SQLite file, a real receiver on
127.0.0.1 that checks signatures with the ``standardwebhooks`` package, and the deliveries API
showing what happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import PIPELINE, TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.delivery.receiver import Answer, Receiver

FAST = {"delivery_poll_seconds": 0.05, "delivery_retry_first_seconds": 0.05, "delivery_timeout_seconds": 1.0,
        "delivery_allowed_addresses": ["127.0.0.1/32"]}


class Setup:
    def __init__(self, app: web.Application, client: TestClient, receiver: Receiver, base: str) -> None:
        self.app, self.client, self.receiver, self.base = app, client, receiver, base

    def as_tenant(self, tenant: str, roles: tuple[str, ...] = ("admin",)) -> Api:
        token = self.app[TOKENS].mint(tenant=tenant, subject="ann", roles=list(roles), ttl=timedelta(hours=1))
        return Api(self.client, self.app, token)

    async def subscribe(self, api: Api, path: str, topics: list[str], **extra: Any) -> dict[str, Any]:
        status, body, _ = await api.call("POST", "/api/v1/webhooks",
                                         json={"url": f"{self.base}/{path}", "topics": topics, **extra})
        assert status == 201, body
        return dict(body)


Make = Callable[..., Awaitable[Setup]]


@pytest.fixture
async def make(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Make]:
    clients: list[TestClient] = []

    async def build(**settings: Any) -> Setup:
        receiver = Receiver()
        server = await aiohttp_server(receiver.app, host="127.0.0.1")
        app = create_app(Settings(data_dir=tmp_path / f"data{len(clients)}", jwt_secret="w" * 40,
                                  **{**FAST, **settings}))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Setup(app, client, receiver, f"http://127.0.0.1:{server.port}")

    yield build
    for client in clients:
        await client.close()


async def delivery_when(api: Api, delivery_id: str, done: Callable[[dict[str, Any]], bool],
                        timeout: float = 10.0) -> dict[str, Any]:
    """The delivery once ``done`` holds for it (polled through the API)."""
    async with asyncio.timeout(timeout):
        while True:
            status, body, _ = await api.call("GET", f"/api/v1/deliveries/{delivery_id}")
            assert status == 200, body
            if done(body):
                return dict(body)
            await asyncio.sleep(0.05)


async def only_delivery(api: Api, **filters: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, page, _ = await api.call("GET", f"/api/v1/deliveries?{query}")
    assert status == 200, page
    [item] = page["items"]
    return dict(item)


async def test_a_completed_run_reaches_its_subscriber_signed_and_the_secret_is_shown_once(make: Make) -> None:
    setup = await make()
    acme = setup.as_tenant("acme")
    endpoint = await setup.subscribe(acme, "hooks", ["run.completed", "run.paused"])
    assert endpoint["secret"].startswith("whsec_")
    status, shown, _ = await acme.call("GET", f"/api/v1/webhooks/{endpoint['id']}")
    assert status == 200 and "secret" not in shown

    status, run, _ = await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    assert status == 202, run
    [arrived] = await setup.receiver.wait_for("hooks", 1)
    message = arrived.verified(endpoint["secret"])
    assert message["type"] == "run.completed"
    assert message["data"]["run_id"] == run["run_id"]
    assert arrived.headers["webhook-id"].startswith("dlv_")

    delivery = await delivery_when(acme, arrived.headers["webhook-id"], lambda d: d["status"] == "delivered")
    assert delivery["run_id"] == run["run_id"] and delivery["topic"] == "run.completed"
    [attempt] = delivery["attempts_made"]
    assert attempt["status_code"] == 200 and attempt["response_snippet"] == "ok"
    with pytest.raises(Exception, match="signature"):
        arrived.verified("whsec_" + "A" * 44)


async def test_a_receiver_that_fails_twice_gets_the_third_try(make: Make) -> None:
    setup = await make()
    acme = setup.as_tenant("acme")
    setup.receiver.answer("flaky", Answer(500), Answer(502), Answer(200))
    await setup.subscribe(acme, "flaky", ["run.completed"])
    await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    arrivals = await setup.receiver.wait_for("flaky", 3)
    assert len({a.headers["webhook-id"] for a in arrivals}) == 1  # one delivery, tried three times
    delivery = await delivery_when(acme, arrivals[0].headers["webhook-id"], lambda d: d["status"] == "delivered")
    assert [a["status_code"] for a in delivery["attempts_made"]] == [500, 502, 200]


async def test_retry_after_is_honoured(make: Make) -> None:
    setup = await make()
    acme = setup.as_tenant("acme")
    setup.receiver.answer("busy", Answer(429, {"Retry-After": "1"}), Answer(200))
    await setup.subscribe(acme, "busy", ["run.completed"])
    await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    first, _ = await setup.receiver.wait_for("busy", 2)
    delivery = await delivery_when(acme, first.headers["webhook-id"], lambda d: d["status"] == "delivered")
    tried, retried = delivery["attempts_made"]
    assert tried["status_code"] == 429
    gap = _seconds_between(tried["started_at"], retried["started_at"])
    assert gap >= 1.0  # the retry policy alone would have waited about 0.05 s


async def test_a_receiver_that_hangs_is_cut_off_at_the_timeout_and_tried_again(make: Make) -> None:
    setup = await make(delivery_timeout_seconds=0.3)
    acme = setup.as_tenant("acme")
    setup.receiver.answer("slow", Answer(delay=5), Answer(200))
    await setup.subscribe(acme, "slow", ["run.completed"])
    await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    first, _ = await setup.receiver.wait_for("slow", 2)
    delivery = await delivery_when(acme, first.headers["webhook-id"], lambda d: d["status"] == "delivered")
    hung = delivery["attempts_made"][0]
    assert hung["status_code"] is None and "no answer within 0.3 s" in hung["error"]


async def test_dead_letters_are_redelivered_on_request(make: Make) -> None:
    setup = await make(delivery_retry_seconds=0.3)
    acme = setup.as_tenant("acme")
    setup.receiver.answer("down", Answer(503))
    endpoint = await setup.subscribe(acme, "down", ["run.completed"])
    await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    await setup.receiver.wait_for("down", 1)
    dead = await only_delivery(acme, endpoint_id=endpoint["id"])
    dead = await delivery_when(acme, dead["id"], lambda d: d["status"] == "dead")
    assert dead["next_attempt_at"] is None and dead["last_status_code"] == 503

    setup.receiver.answer("down", Answer(200))
    status, body, _ = await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/redeliver-dead")
    assert (status, body) == (202, {"redelivered": 1})
    again = await delivery_when(acme, dead["id"], lambda d: d["status"] == "delivered")
    assert again["attempts_made"][-1]["status_code"] == 200
    status, body, _ = await acme.call("POST", f"/api/v1/deliveries/{dead['id']}/redeliver")
    assert status == 202 and body["status"] == "pending"
    await delivery_when(acme, dead["id"], lambda d: d["status"] == "delivered" and d["attempts"] > again["attempts"])


async def test_an_endpoint_that_keeps_failing_is_disabled(make: Make) -> None:
    setup = await make(delivery_disable_after=3)
    acme = setup.as_tenant("acme")
    setup.receiver.answer("broken", Answer(500))
    endpoint = await setup.subscribe(acme, "broken", ["run.completed"])
    await acme.call("POST", "/api/v1/exceptions", json=exception_body())
    await setup.receiver.wait_for("broken", 3)
    async with asyncio.timeout(10):
        while True:
            _, shown, _ = await acme.call("GET", f"/api/v1/webhooks/{endpoint['id']}")
            if not shown["enabled"]:
                break
            await asyncio.sleep(0.05)
    assert shown["disabled_reason"] == "disabled after 3 failed deliveries in a row"
    await asyncio.sleep(0.3)
    assert len(setup.receiver.at("broken")) == 3  # no try while disabled

    setup.receiver.answer("broken", Answer(200))
    status, enabled, _ = await acme.call("PATCH", f"/api/v1/webhooks/{endpoint['id']}", json={"enabled": True})
    assert status == 200 and enabled["enabled"] and enabled["consecutive_failures"] == 0
    await setup.receiver.wait_for("broken", 4)


async def test_both_secrets_sign_while_a_rotation_overlaps(make: Make) -> None:
    setup = await make()
    acme = setup.as_tenant("acme")
    endpoint = await setup.subscribe(acme, "rotating", ["webhook.test"])
    status, rotated, _ = await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/rotate-secret",
                                         json={"overlap_seconds": 3600})
    assert status == 200 and rotated["secret"] != endpoint["secret"]
    status, accepted, _ = await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/test")
    assert status == 202
    [arrived] = await setup.receiver.wait_for("rotating", 1)
    assert arrived.headers["webhook-id"] == accepted["delivery_id"]
    for secret in (endpoint["secret"], rotated["secret"]):
        assert arrived.verified(secret)["type"] == "webhook.test"

    status, _, _ = await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/rotate-secret",
                                   json={"overlap_seconds": 0})
    await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/test")
    _, latest = await setup.receiver.wait_for("rotating", 2)
    with pytest.raises(Exception, match="signature"):
        latest.verified(rotated["secret"])  # no overlap asked: the replaced secret stopped signing at once


async def test_one_tenant_never_receives_another_tenants_events(make: Make) -> None:
    setup = await make()
    acme, globex = setup.as_tenant("acme"), setup.as_tenant("globex")
    mine = await setup.subscribe(acme, "acme", ["#"])
    await setup.subscribe(globex, "globex", ["run.completed"])
    _, run, _ = await globex.call("POST", "/api/v1/exceptions", json=exception_body())
    await setup.receiver.wait_for("globex", 1)
    await setup.app[PIPELINE].drain()
    assert setup.receiver.at("acme") == []
    status, _, _ = await globex.call("GET", f"/api/v1/webhooks/{mine['id']}")
    assert status == 404
    status, page, _ = await acme.call("GET", f"/api/v1/deliveries?run_id={run['run_id']}")
    assert status == 200 and page["items"] == []


async def test_private_addresses_are_refused_unless_allowed(make: Make) -> None:
    setup = await make(delivery_allowed_addresses=[])
    acme = setup.as_tenant("acme")
    for url in ("http://127.0.0.1:9/x", "http://10.0.0.8/x", "http://169.254.169.254/latest", "http://[::1]/x"):
        status, body, _ = await acme.call("POST", "/api/v1/webhooks", json={"url": url, "topics": ["run.*"]})
        assert status == 400, (url, body)
        assert body["error"]["details"][0]["field"] == "body.url"
    # a name is checked where it resolves, when the delivery is sent: localhost is loopback
    status, endpoint, _ = await acme.call("POST", "/api/v1/webhooks", json={
        "url": f"http://localhost:{setup.base.rsplit(':', 1)[1]}/sneaky", "topics": ["webhook.test"]})
    assert status == 201
    _, accepted, _ = await acme.call("POST", f"/api/v1/webhooks/{endpoint['id']}/test")
    refused = await delivery_when(acme, accepted["delivery_id"], lambda d: d["status"] == "dead")
    assert "loopback" in refused["last_error"] and setup.receiver.received == []


async def test_an_operator_reads_deliveries_but_cannot_manage_endpoints(make: Make) -> None:
    setup = await make()
    operator = setup.as_tenant("acme", ("operator",))
    status, _, _ = await operator.call("GET", "/api/v1/webhooks")
    assert status == 200
    status, body, _ = await operator.call("POST", "/api/v1/webhooks",
                                          json={"url": f"{setup.base}/x", "topics": ["run.*"]})
    assert status == 403, body


def _seconds_between(earlier: str, later: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
