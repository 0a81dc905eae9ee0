"""The dashboard in a real browser against the real service: live runs and approvals, approving
and rejecting, completing a human step against its contract, schedules, the copilot box, API
errors, and a screenshot of each page in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.conftest import EXPECT_MS, Dashboard

pytestmark = pytest.mark.browser

PAUSING = {"amount": "15000.00", "currency": "USD", "type": "payment.failed", "code": "card_declined"}
"""Over acme's 5000 approval threshold: the run pauses at the ops_lead_approval gate."""
CUSTOMS_HOLD = {"domain": "shipping", "type": "shipment.customs_hold", "code": "missing_invoice", "amount": None,
                "currency": None, "source": "carrier", "source_id": "SHP-88213"}
"""Matches the shipped shipment-customs-hold playbook, whose broker-review step waits for a person
with the outputs resolution (one of four values) and duty_amount (a number, at least 0)."""


def expect(target: Any) -> Any:
    """Playwright's ``expect``, imported late: without Playwright the tests skip, not fail to load."""
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


def run_row(dashboard: Dashboard, run_id: str) -> Any:
    return dashboard.page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]')


async def test_a_paused_run_appears_live_is_approved_from_its_page_and_completes(dashboard: Dashboard):
    page = dashboard.page
    await dashboard.sign_in()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)

    run_id = (await dashboard.ingest(**PAUSING))["run_id"]
    await expect(run_row(dashboard, run_id)).to_have_attribute("data-status", "paused", timeout=EXPECT_MS)
    await dashboard.screenshot("runs")

    await run_row(dashboard, run_id).get_by_role("link", name=run_id).click()
    pause = page.get_by_test_id("pause-panel")
    await expect(pause).to_contain_text("amount 15000.00 USD is at or over 5000", timeout=EXPECT_MS)
    await expect(pause).to_contain_text("0 of 1")  # approvals so far, of those the gate needs
    await expect(page.get_by_test_id("triage")).to_contain_text("payment-card-declined")
    await expect(page.get_by_test_id("policy")).to_contain_text("ops_lead_approval")
    await expect(page.get_by_test_id("timeline").locator('[data-topic="run.paused"]')).to_have_count(1)
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
    await dashboard.screenshot("run-paused")

    await pause.get_by_label("Reason").fill("customer confirmed by phone")
    await pause.get_by_role("button", name="Approve").click()
    await expect(page.get_by_test_id("run-status")).to_contain_text("completed", timeout=EXPECT_MS)
    await expect(pause).to_have_count(0)
    await expect(page.get_by_test_id("timeline").locator('[data-topic="run.completed"]')).to_have_count(1)
    await expect(page.get_by_test_id("decisions")).to_contain_text("user:reviewer")
    for step in await page.get_by_test_id("step-row").all():
        await expect(step).to_have_attribute("data-status", "completed")
    await dashboard.screenshot("run")

    status, run = await dashboard.call("GET", f"/api/v1/runs/{run_id}", dashboard.user)
    assert status == 200 and run["status"] == "completed"
    [decision] = run["decisions"]
    assert decision["by"] == "user:reviewer" and decision["reason"] == "customer confirmed by phone"


async def test_a_run_page_follows_a_decision_taken_elsewhere(dashboard: Dashboard):
    page = dashboard.page
    run_id = (await dashboard.ingest(**PAUSING))["run_id"]
    await dashboard.sign_in(f"#/runs/{run_id}")
    await expect(page.get_by_test_id("pause-panel")).to_be_visible(timeout=EXPECT_MS)
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)

    resume = f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume"
    status, body = await dashboard.call("POST", resume, dashboard.approver, {"payload": {"decision": "approve"}})
    assert status == 202, body
    await expect(page.get_by_test_id("run-status")).to_contain_text("completed", timeout=EXPECT_MS)
    await expect(page.get_by_test_id("pause-panel")).to_have_count(0)
    await expect(page.get_by_test_id("timeline").locator('[data-topic="dashboard.hitl_resumed"]')).to_contain_text(
        "user:lee")


async def test_typing_in_a_form_survives_live_updates_of_its_run(dashboard: Dashboard):
    """An event on the run re-renders its page; the decision form being typed in stays, focused."""
    page = dashboard.page
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    run_id = (await dashboard.ingest(**PAUSING, sla_deadline=soon))["run_id"]
    await dashboard.sign_in(f"#/runs/{run_id}")
    reason = page.get_by_test_id("pause-panel").get_by_label("Reason")
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)
    await reason.click()
    await page.keyboard.type("checked with ")

    status, body = await dashboard.call("POST", "/api/v1/schedules/sla-sweep/run-now", dashboard.user)
    assert status == 202, body
    await expect(page.get_by_test_id("timeline").locator('[data-topic="sla.at_risk"]')).to_have_count(
        1, timeout=EXPECT_MS)
    # triage made it high (a large amount, its SLA within the hour); the sweep raised it a level
    await expect(page.get_by_test_id("summary")).to_contain_text("critical")
    await page.keyboard.type("the customer")
    await expect(reason).to_have_value("checked with the customer")
    await expect(reason).to_be_focused()


async def test_the_approvals_queue_is_live_and_a_rejection_needs_a_reason(dashboard: Dashboard):
    page = dashboard.page
    await dashboard.sign_in("#/approvals")
    await expect(page.get_by_role("heading", name="Pending approvals")).to_be_visible()
    await expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live", timeout=EXPECT_MS)

    first = (await dashboard.ingest(**PAUSING, source_id="ch_first"))["run_id"]
    second = (await dashboard.ingest(**PAUSING, source_id="ch_second"))["run_id"]
    card = page.get_by_test_id(f"pending-{first}")
    await expect(card).to_contain_text("ops_lead_approval", timeout=EXPECT_MS)
    await expect(page.get_by_test_id(f"pending-{second}")).to_be_visible(timeout=EXPECT_MS)
    await dashboard.screenshot("approvals")

    await card.get_by_role("button", name="Reject").click()
    await expect(card.get_by_test_id("form-error")).to_contain_text("VALIDATION_FAILED", timeout=EXPECT_MS)
    await expect(card.get_by_test_id("field-error-reason")).to_contain_text("reason", timeout=EXPECT_MS)
    await expect(card.get_by_label(re.compile("^Reason"))).to_have_attribute("aria-invalid", "true")

    await card.get_by_label(re.compile("^Reason")).fill("duplicate of an older ticket")
    await card.get_by_role("button", name="Reject").click()
    await expect(card).to_have_count(0, timeout=EXPECT_MS)
    await expect(page.get_by_test_id("notices")).to_contain_text(f"Run {first}: rejected")

    resume = f"/api/v1/workflows/exception_pipeline/runs/{second}/resume"
    status, _ = await dashboard.call("POST", resume, dashboard.approver, {"payload": {"decision": "approve"}})
    assert status == 202
    await expect(page.get_by_test_id(f"pending-{second}")).to_have_count(0, timeout=EXPECT_MS)
    await expect(page.get_by_test_id("pending-empty")).to_be_visible()

    status, run = await dashboard.call("GET", f"/api/v1/runs/{first}", dashboard.user)
    assert run["status"] == "rejected" and run["decisions"][0]["reason"] == "duplicate of an older ticket"


async def test_a_human_step_is_refused_with_the_contract_error_then_completed(dashboard: Dashboard):
    page = dashboard.page
    accepted = await dashboard.ingest(**CUSTOMS_HOLD)
    assert accepted["status"] == "waiting_for_input", accepted
    run_id = accepted["run_id"]
    await dashboard.sign_in(f"#/runs/{run_id}")

    form = page.get_by_test_id("step-form-broker-review")
    await expect(form).to_be_visible(timeout=EXPECT_MS)
    # what the playbook tells the person doing the step is shown beside its form
    await expect(page.get_by_test_id("step-instructions-broker-review")).to_contain_text("Ask the broker")
    await expect(form).to_contain_text("at least 0")
    await form.get_by_label("resolution").select_option(label="duties_paid_by_us")
    await form.get_by_label("duty_amount").fill("-40")
    await form.get_by_role("button", name="Complete step").click()

    await expect(form.get_by_test_id("field-error-duty_amount")).to_have_text(
        "Output field duty_amount must be at least 0.0", timeout=EXPECT_MS)
    await expect(form.get_by_test_id("form-error")).to_contain_text("VALIDATION_FAILED")
    await expect(form.get_by_label("duty_amount")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_test_id("field-error-resolution")).to_be_empty()
    step = page.locator('[data-testid="step-row"][data-step-id="broker-review"]')
    await expect(step).to_have_attribute("data-status", "waiting_for_input")
    await dashboard.screenshot("run-human-step")

    await form.get_by_label("duty_amount").fill("40.5")
    await form.get_by_label("notes").fill("DDP order; paid the broker")
    await form.get_by_role("button", name="Complete step").click()
    await expect(step).to_have_attribute("data-status", "completed", timeout=EXPECT_MS)
    await expect(page.get_by_test_id("run-status")).to_contain_text("completed", timeout=EXPECT_MS)
    await expect(form).to_have_count(0)
    await expect(page.get_by_test_id("notices")).to_contain_text("Step broker-review completed")

    _, playbook = await dashboard.call("GET", f"/api/v1/runs/{run_id}/playbook", dashboard.user)
    [review] = [s for s in playbook["playbook"]["steps"] if s["id"] == "broker-review"]
    assert review["outputs"] == {"resolution": "duties_paid_by_us", "duty_amount": 40.5,
                                 "notes": "DDP order; paid the broker"}
    assert review["completed_by"] == "user:reviewer"


async def test_filters_narrow_the_runs_list_and_stay_in_the_address(dashboard: Dashboard):
    page = dashboard.page
    paused = (await dashboard.ingest(**PAUSING))["run_id"]
    waiting = (await dashboard.ingest(**CUSTOMS_HOLD))["run_id"]
    await dashboard.sign_in()
    await expect(run_row(dashboard, paused)).to_be_visible(timeout=EXPECT_MS)
    await expect(run_row(dashboard, waiting)).to_be_visible()

    await page.get_by_role("checkbox", name="paused").check()
    await expect(page).to_have_url(re.compile(r"#/runs\?status=paused$"))
    await expect(run_row(dashboard, paused)).to_be_visible(timeout=EXPECT_MS)
    await expect(run_row(dashboard, waiting)).to_have_count(0)

    await page.get_by_label("Workflow").select_option("sla_sweep")
    await expect(page.get_by_text("No runs match these filters.")).to_be_visible(timeout=EXPECT_MS)
    await page.get_by_role("button", name="Clear filters").click()
    await expect(run_row(dashboard, waiting)).to_be_visible(timeout=EXPECT_MS)


async def test_schedules_show_their_next_fires_and_pause_resume_and_run_now(dashboard: Dashboard):
    page = dashboard.page
    await dashboard.sign_in("#/schedules")
    row = page.locator('[data-testid="schedule-row"][data-schedule-id="daily-digest"]')
    await expect(row).to_contain_text("0 7 * * *", timeout=EXPECT_MS)
    await expect(row.get_by_role("list", name="Next fires of daily-digest").get_by_role("listitem")).to_have_count(5)
    await dashboard.screenshot("schedules")

    await row.get_by_role("button", name="Pause daily-digest").click()
    await expect(row).to_have_attribute("data-paused", "true", timeout=EXPECT_MS)
    await expect(row).to_contain_text("none while paused")
    await row.get_by_role("button", name="Resume daily-digest").click()
    await expect(row).to_have_attribute("data-paused", "false", timeout=EXPECT_MS)
    await expect(row.get_by_role("listitem")).to_have_count(5)

    await row.get_by_role("button", name="Run daily-digest now").click()
    notice = page.get_by_test_id("notices")
    await expect(notice).to_contain_text("Schedule daily-digest fired: run run_", timeout=EXPECT_MS)
    await notice.get_by_role("link").click()
    await expect(page.get_by_test_id("summary")).to_contain_text("feedback_digest", timeout=EXPECT_MS)


async def test_the_copilot_box_says_when_the_copilot_is_not_configured(dashboard: Dashboard):
    page = dashboard.page
    await dashboard.sign_in("#/copilot")
    await page.get_by_label("Ask the copilot").fill("Why did the last card payment pause?")
    await page.get_by_role("button", name="Ask").click()
    says = page.get_by_test_id("copilot-status")
    await expect(says).to_contain_text("The copilot is not configured", timeout=EXPECT_MS)
    await expect(page.get_by_test_id("copilot-answer")).to_be_hidden()
    status, body = await dashboard.call("POST", "/api/v1/copilot/ask", dashboard.user, {"query": "Why?"})
    assert status in (404, 503), body  # no copilot route, or no model configured for it
    if status == 503:
        await expect(says).to_contain_text(body["error"]["message"])  # what to set, in the server's words
    await dashboard.screenshot("copilot")


async def test_the_copilot_box_shows_the_answer_and_the_tools_it_used(dashboard: Dashboard):
    """The page's side of the copilot's contract. No model runs in tests, so the server's answer
    is stood in for at the network layer: what is checked is what the page does with a
    ``CopilotResponse``, and that a follow-up carries the conversation's ``thread_id``."""
    page = dashboard.page
    sent: list[dict[str, str]] = []
    answer = {
        "reply": "Run run_x paused at ops_lead_approval:\nthe amount 15000.00 USD is at or over 5000.",
        "tools_used": [
            {"tool_name": "get_run", "input_summary": "run_id=run_x",
             "output_summary": "status paused, gate ops_lead_approval"},
            {"tool_name": "list_events", "input_summary": "run_id=run_x topic=run.paused",
             "output_summary": "1 event"},
        ],
        "iterations": 3, "thread_id": "thr_1", "limit_reached": False,
    }

    async def copilot(route: Any) -> None:
        sent.append(route.request.post_data_json)
        await route.fulfill(status=200, content_type="application/json", json=answer)

    await page.route("**/api/v1/copilot/ask", copilot)
    await dashboard.sign_in("#/copilot")
    await page.get_by_label("Ask the copilot").fill("Why did run run_x pause?")
    await page.get_by_role("button", name="Ask").click()
    box = page.get_by_test_id("copilot-answer")
    await expect(box.get_by_test_id("copilot-reply")).to_have_text(answer["reply"], timeout=EXPECT_MS)
    tools = box.get_by_test_id("copilot-tool")
    await expect(tools).to_have_count(2)
    await expect(tools.first).to_contain_text("get_run")
    await expect(tools.first).to_contain_text("run_id=run_x")
    await expect(tools.first).to_contain_text("status paused, gate ops_lead_approval")
    await expect(page.get_by_test_id("copilot-status")).to_be_hidden()
    await dashboard.screenshot("copilot-answer")

    assert sent == [{"query": "Why did run run_x pause?"}]

    await expect(page.get_by_role("button", name="New conversation")).to_be_visible()
    await page.get_by_label("Ask the copilot").fill("And who can approve it?")
    async with page.expect_request("**/api/v1/copilot/ask") as follow_up:
        await page.get_by_role("button", name="Ask").click()
    assert (await follow_up.value).post_data_json == {"query": "And who can approve it?", "thread_id": "thr_1"}


async def test_without_a_stream_the_page_says_so_and_polls(dashboard: Dashboard):
    """A server without the event stream (here: the stream routes answer 404 as an unknown route
    does): the page says live updates are unavailable and still shows new runs by polling."""
    page = dashboard.page
    no_stream = '{"error": {"code": "ROUTE_NOT_FOUND", "message": "no such route", "details": null}}'
    await page.route(re.compile(r".*/events/stream.*"), lambda route: route.fulfill(
        status=404, content_type="application/json", body=no_stream))
    await dashboard.sign_in()
    live = page.get_by_test_id("live-status")
    await expect(live).to_have_attribute("data-state", "unavailable", timeout=EXPECT_MS)
    await expect(live).to_contain_text("Live updates unavailable")

    run_id = (await dashboard.ingest(**PAUSING))["run_id"]
    await expect(run_row(dashboard, run_id)).to_have_attribute("data-status", "paused", timeout=10_000)
    await expect(page.get_by_test_id("error-area")).to_be_empty()


async def test_api_errors_are_shown_and_a_refused_token_signs_out(dashboard: Dashboard):
    page = dashboard.page
    await page.goto(f"{dashboard.base}/")
    await page.get_by_label("Bearer token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    errors = page.get_by_test_id("error-area")
    await expect(errors).to_contain_text("UNAUTHORIZED", timeout=EXPECT_MS)
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    await dashboard.sign_in("#/runs/run_does_not_exist")
    await expect(errors).to_contain_text("RUN_NOT_FOUND", timeout=EXPECT_MS)
    await expect(errors).to_contain_text("no run run_does_not_exist")

    await page.evaluate("localStorage.setItem('autopilot.token', 'expired.or.forged')")
    await page.get_by_role("link", name="Approvals").click()
    await expect(errors).to_contain_text("UNAUTHORIZED", timeout=EXPECT_MS)
    await expect(page.get_by_label("Bearer token")).to_be_visible()

    await dashboard.sign_in()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_label("Bearer token")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('autopilot.token')") is None
