"""A playbook's notify step, end to end: the step's outcome names a delivery, and the message
arrives on the tenant's channel, e-mail at a real SMTP server (aiosmtpd) and Slack at a real
receiver; a channel the tenant lacks, or a secret its environment lacks, is a dead delivery that
says so."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from api.app import create_app
from api.keys import PIPELINE, TOKENS
from config.settings import Settings
from tests.api.conftest import Api, exception_body
from tests.config_copies import config_with
from tests.delivery.receiver import Receiver
from tests.delivery.test_webhooks import FAST, delivery_when
from tests.e2e.cluster import consecutive_free_ports


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=consecutive_free_ports(1))
    controller.start()
    yield inbox, controller.port
    controller.stop()


@asynccontextmanager
async def started(tmp_path: Path, channels: str, **settings: Any) -> AsyncIterator[tuple[Api, web.Application]]:
    config = config_with(tmp_path / "config")
    (config / "channels.yaml").write_text(channels)
    app = create_app(Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="c" * 40,
                              public_url="https://autopilot.example.com", **{**FAST, **settings}))
    async with TestClient(TestServer(app)) as client:
        token = app[TOKENS].mint(tenant="acme", subject="ann", roles=["admin"], ttl=timedelta(hours=1))
        yield Api(client, app, token), app


async def step_outputs(api: Api, run_id: str, step_id: str) -> dict[str, Any]:
    await api.app[PIPELINE].drain()
    _, events, _ = await api.call("GET", f"/api/v1/runs/{run_id}/events")
    [done] = [e for e in events["items"] if e["topic"] == "playbook.step_completed"
              and e["payload"]["step_id"] == step_id]
    return dict(done["payload"])


async def test_an_email_step_reaches_the_smtp_server(tmp_path: Path, smtp: Any) -> None:
    inbox, port = smtp
    channels = f"""
channels:
  - {{id: email, tenant: acme, kind: email, from: autopilot@acme.example, host: 127.0.0.1, port: {port},
     security: none}}
"""
    async with started(tmp_path, channels) as (api, _):
        _, run, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body())
        step = await step_outputs(api, run["run_id"], "notify-customer")
        delivery_id = step["outputs"]["delivery_id"]
        assert step["notes"].startswith(f"delivery {delivery_id} queued on email for maria.lopez@example.com")
        delivered = await delivery_when(api, delivery_id, lambda d: d["status"] == "delivered")
        assert delivered["run_id"] == run["run_id"] and delivered["endpoint_id"] == "channel:email"
        [message] = inbox.messages
        assert message["To"] == "maria.lopez@example.com" and message["From"] == "autopilot@acme.example"
        assert message["Subject"] == "card_declined_update_payment"
        assert message["Message-ID"] == f"<{delivery_id}@autopilot>"
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and f"https://autopilot.example.com/#/runs/{run['run_id']}" in text.get_content()
        assert html is not None and "<a href=" in html.get_content()


async def test_a_slack_step_posts_text_and_blocks(tmp_path: Path, aiohttp_server: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    monkeypatch.setenv("TEST_SLACK_URL", f"http://127.0.0.1:{site.port}/slack")
    channels = "channels:\n  - {id: slack, tenant: acme, kind: slack, url_env: TEST_SLACK_URL}\n"
    async with started(tmp_path, channels) as (api, _):
        body = exception_body(domain="orders", type="order.stuck", code="stuck", source_id="SO-7", amount=None,
                              currency=None)
        _, run, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        [arrived] = await receiver.wait_for("slack", 1)
        posted = orjson.loads(arrived.body)
        assert posted["text"].startswith("Order SO-7 stuck, SLA ")  # the shipped order-stuck-fulfilment's words
        section, context = posted["blocks"]
        assert section["text"]["text"] == posted["text"]
        assert "#cs-escalations" in context["elements"][0]["text"]
        assert f"/#/runs/{run['run_id']}" in context["elements"][0]["text"]
        step = await step_outputs(api, run["run_id"], "notify-customer-service")
        await delivery_when(api, step["outputs"]["delivery_id"], lambda d: d["status"] == "delivered")


async def test_a_missing_channel_or_secret_is_a_dead_delivery_that_says_which(tmp_path: Path) -> None:
    channels = "channels:\n  - {id: slack, tenant: acme, kind: slack, url_env: AUTOPILOT_TEST_UNSET_URL}\n"
    async with started(tmp_path, channels) as (api, _):
        _, card, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body())
        no_channel = (await step_outputs(api, card["run_id"], "notify-customer"))["outputs"]["delivery_id"]
        dead = await delivery_when(api, no_channel, lambda d: d["status"] == "dead")
        assert "tenant acme has no channel 'email'" in dead["last_error"]
        assert dead["attempts"] == 0 and dead["attempts_made"] == []  # written dead with the step: nothing to try

        stuck = exception_body(domain="orders", type="order.stuck", code="stuck", source_id="SO-8", amount=None,
                               currency=None)
        _, run, _ = await api.call("POST", "/api/v1/exceptions", json=stuck)
        no_secret = (await step_outputs(api, run["run_id"], "notify-customer-service"))["outputs"]["delivery_id"]
        dead = await delivery_when(api, no_secret, lambda d: d["status"] == "dead")
        assert "AUTOPILOT_TEST_UNSET_URL is not set" in dead["last_error"] and dead["attempts"] == 0
        _, run_after, _ = await api.call("GET", f"/api/v1/runs/{run['run_id']}")
        assert run_after["status"] == "completed"  # the run's decision stands; the delivery shows what failed


async def test_a_slack_channel_subscribed_in_config_announces_a_paused_run_with_links_to_decide(
        tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    monkeypatch.setenv("TEST_SLACK_URL", f"http://127.0.0.1:{site.port}/approvals")
    channels = ("channels:\n  - {id: approvals, tenant: acme, kind: slack, url_env: TEST_SLACK_URL,"
                " topics: [run.paused]}\n")
    async with started(tmp_path, channels) as (api, _):
        _, run, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body(amount="25000.00"))
        assert run["status"] == "paused"
        [arrived] = await receiver.wait_for("approvals", 1)
        posted = orjson.loads(arrived.body)
        assert posted["text"].startswith(f"Run {run['run_id']} waits for a decision at ")
        buttons = posted["blocks"][-1]["elements"]
        link = f"https://autopilot.example.com/#/runs/{run['run_id']}"
        assert [(b["text"]["text"], b["url"]) for b in buttons] == [
            ("Approve…", f"{link}?decide=approve"), ("Reject…", f"{link}?decide=reject")]
        _, page, _ = await api.call("GET", f"/api/v1/deliveries?run_id={run['run_id']}&endpoint_id=channel:approvals")
        [delivery] = page["items"]
        assert delivery["topic"] == "run.paused" and delivery["event_id"] is not None


async def test_a_refused_notification_is_sent_when_redelivered_after_its_variable_is_set(
        tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    monkeypatch.delenv("TEST_LATE_SLACK_URL", raising=False)
    channels = "channels:\n  - {id: slack, tenant: acme, kind: slack, url_env: TEST_LATE_SLACK_URL}\n"
    async with started(tmp_path, channels) as (api, _):
        stuck = exception_body(domain="orders", type="order.stuck", code="stuck", source_id="SO-9", amount=None,
                               currency=None)
        _, run, _ = await api.call("POST", "/api/v1/exceptions", json=stuck)
        delivery_id = (await step_outputs(api, run["run_id"], "notify-customer-service"))["outputs"]["delivery_id"]
        await delivery_when(api, delivery_id, lambda d: d["status"] == "dead")
        monkeypatch.setenv("TEST_LATE_SLACK_URL", f"http://127.0.0.1:{site.port}/late")
        status, _, _ = await api.call("POST", f"/api/v1/deliveries/{delivery_id}/redeliver")
        assert status == 202
        [arrived] = await receiver.wait_for("late", 1)
        assert orjson.loads(arrived.body)["text"].startswith("Order SO-9 stuck")
        await delivery_when(api, delivery_id, lambda d: d["status"] == "delivered" and d["attempts"] == 1)
