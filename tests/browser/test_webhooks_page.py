"""The Webhooks page in Chromium: an endpoint added with its secret shown once, a signed test
message and a completed run arriving at a real receiver, the deliveries with their attempts, and
a run's page listing what was sent for it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import EXPECT_MS, Dashboard, missing
from tests.delivery.receiver import Receiver
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.browser


def expect(target: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """The dashboard's server, allowed to deliver to the test's receiver on 127.0.0.1."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    server = ServerProcess(tmp_path / "data", extra_env={
        "AUTOPILOT_DELIVERY_ALLOWED_ADDRESSES": json.dumps(["127.0.0.1/32"]),
        "AUTOPILOT_DELIVERY_POLL_SECONDS": "0.1"})
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_an_endpoint_is_added_tested_and_its_deliveries_shown(dashboard: Dashboard, aiohttp_server: Any):
    receiver = Receiver()
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    page = dashboard.page
    await dashboard.sign_in("#/webhooks")
    await page.get_by_label("URL").fill(f"http://127.0.0.1:{site.port}/hooks")
    await page.get_by_label("Topics").fill("run.completed, webhook.test")
    await page.get_by_role("button", name="Add endpoint").click()
    secret = (await page.get_by_test_id("secret").text_content(timeout=EXPECT_MS)) or ""
    assert secret.startswith("whsec_")
    row = page.get_by_test_id("webhook-row")
    await expect(row).to_contain_text("run.completed", timeout=EXPECT_MS)
    endpoint_id = await row.get_attribute("data-webhook-id")

    await page.get_by_role("button", name=f"Send a test to {endpoint_id}").click()
    [test_message] = await receiver.wait_for("hooks", 1)
    assert test_message.verified(secret)["type"] == "webhook.test"

    run = await dashboard.ingest()
    await receiver.wait_for("hooks", 2)
    await page.get_by_role("button", name="Refresh").click()
    delivered = page.locator('[data-testid="delivery-row"][data-status="delivered"]').filter(has_text="run.completed")
    await expect(delivered).to_be_visible(timeout=EXPECT_MS)
    delivery_id = await delivered.get_attribute("data-delivery-id")
    await delivered.get_by_role("button", name=f"Attempts of {delivery_id}").click()
    await expect(page.get_by_role("list", name=f"Attempts of {delivery_id}")).to_contain_text("200")
    await dashboard.screenshot("webhooks")

    await page.goto(f"{dashboard.base}/#/runs/{run['run_id']}")
    section = page.get_by_test_id("deliveries")
    await expect(section).to_contain_text("run.completed", timeout=EXPECT_MS)
    await expect(section).to_contain_text("delivered")
    # the card-declined playbook e-mails the customer; acme's e-mail channel has no SMTP host here
    await expect(section).to_contain_text("channel:email")
    await expect(section).to_contain_text("ACME_SMTP_HOST is not set", timeout=EXPECT_MS)


async def test_a_notifications_decide_link_brings_the_reader_to_the_decision(dashboard: Dashboard):
    paused = await dashboard.ingest(amount="25000.00", source_id="ch_decide")
    assert paused["status"] == "paused"
    page = dashboard.page
    await dashboard.sign_in(f"#/runs/{paused['run_id']}?decide=reject")
    form = page.get_by_role("form", name=f"Decision on run {paused['run_id']}")
    await expect(form.get_by_label("Reason")).to_be_focused(timeout=EXPECT_MS)
    await expect(page.get_by_test_id("run-status")).to_contain_text("paused")  # opening the link decided nothing
