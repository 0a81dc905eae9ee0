"""A valid request body for each route of the API, for tests that walk the route table."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import exception_body

FLAGGED = exception_body(domain="accounts", type="account.flagged", amount=None, currency=None)
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/exceptions"): FLAGGED,
    ("POST", "/api/v1/playbooks/{playbook_id}/runs"): FLAGGED,
    ("POST", "/api/v1/workflows/{workflow_id}/trigger"): {"payload": FLAGGED},
    ("POST", "/api/v1/workflows/{workflow_id}/runs/{run_id}/resume"): {"payload": {"decision": "approve"}},
    ("POST", "/api/v1/runs/{run_id}/playbook/recalculate"): {},
    ("POST", "/api/v1/playbook-runs/{run_id}/complete-step/{step_id}"): {"outputs": {"decision": "clear",
                                                                                      "risk_score": 0.1}},
    ("POST", "/api/v1/runs/{run_id}/run-next-step"): {"mode": "dryRun"},
    ("POST", "/api/v1/schedules"): {"id": "strangers-own", "workflow": "feedback_digest",
                                    "trigger": {"type": "interval", "seconds": 3600}},
    ("PATCH", "/api/v1/schedules/{schedule_id}"): {"description": "taken over"},
    ("POST", "/api/v1/schedules/{schedule_id}/pause"): {"reason": "not yours"},
    ("POST", "/api/v1/schedules/{schedule_id}/resume"): None,
    ("POST", "/api/v1/schedules/{schedule_id}/run-now"): None,
    ("POST", "/api/v1/schedules/{schedule_id}/backfill"): {"start": "2020-01-01T00:00:00Z",
                                                           "end": "2020-01-02T00:00:00Z"},
    ("POST", "/api/v1/webhooks"): {"url": "https://hooks.example.com/stranger", "topics": ["run.completed"]},
    ("PATCH", "/api/v1/webhooks/{endpoint_id}"): {"description": "taken over"},
    ("POST", "/api/v1/webhooks/{endpoint_id}/rotate-secret"): {"overlap_seconds": 0},
    ("POST", "/api/v1/webhooks/{endpoint_id}/test"): None,
    ("POST", "/api/v1/webhooks/{endpoint_id}/redeliver-dead"): None,
    ("POST", "/api/v1/deliveries/{delivery_id}/redeliver"): None,
    ("POST", "/api/v1/copilot/ask"): {"query": "what is paused?"},
    ("POST", "/api/v1/copilot/ask/stream"): {"query": "what is paused?"},
}
"""A valid body for every route that takes one: a new route without a case fails the test."""
