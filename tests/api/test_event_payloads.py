"""Every event the service writes fits its topic's payload model (``domain/events.py``), the model
``/asyncapi.json`` and ``/openapi.json`` show stream consumers. The pipeline is driven over HTTP
through every path that writes an event; then every event in the database is validated against
its topic's model, and every topic must have been written at least once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from sqlalchemy import select

from api.app import create_app
from api.keys import DB, JOBS
from config.settings import Settings
from domain.events import PAYLOADS
from domain.topics import Topic
from store.tables import events
from tests.api.conftest import Api, exception_body
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with
from tests.conftest import FakeClock

UNREACHABLE: frozenset[Topic] = frozenset()
"""Topics this test cannot make the service write (none today); each would need a comment saying why."""

RULES = [
    {"id": f"test-{kind}", "when": {"domain": "tests", "type": f"tests.{kind}"}, "severity": "low", "confidence": 0.9}
    for kind in ("tool_call", "step_fails", "stepwise")
]
TOOL_PLAYBOOK = """
id: test-tool
name: Ask the carrier
match: {domain: tests, exception_type: "tests.tool_call"}
steps:
  - id: ask
    name: Ask the carrier
    action: call_tool
    params: {tool: carrier, input: {reference: "{exception.source_id}"}}
    outputs:
      claim_id: {type: string}
  - id: note
    name: Note the claim
    action: add_comment
    params: {text: "claim {steps.ask.outputs.claim_id}"}
"""
FAILING_STEP_PLAYBOOK = """
id: test-step-fails
name: A step that fails and pauses
match: {domain: tests, exception_type: "tests.step_fails"}
steps:
  - id: route
    name: Route without an owner
    action: assign_owner
    on_failure: pause
  - id: note
    name: Note it
    action: add_comment
    params: {text: "went on without an owner"}
"""
STEPWISE_PLAYBOOK = """
id: test-stepwise
name: One step at a time
mode: stepwise
match: {domain: tests, exception_type: "tests.stepwise"}
steps:
  - id: first
    name: First
    action: add_comment
    params: {text: one}
  - id: second
    name: Second
    action: add_comment
    params: {text: two}
"""
URGENT_PLAYBOOK = (
    REVIEW_PLAYBOOK.replace("id: test-review", "id: test-review-urgent").replace("priority: 1000", "priority: 2000")
    .replace('exception_type: "account.flagged"}', 'exception_type: "account.flagged", sla_minutes_remaining_lt: 30}')
)
"""Takes over flagged accounts whose SLA is under 30 minutes away: what a recalculation finds later."""


async def carrier(request: web.Request) -> web.Response:
    """The tool: a claim for reference ``ok``, a server error for anything else."""
    body = await request.json()
    if body.get("reference") != "ok":
        return web.json_response({"error": "carrier unavailable"}, status=500)
    return web.json_response({"claim_id": "CLM-1"})


@pytest.fixture
async def carrier_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/claims", carrier)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/claims"))
    await server.close()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock, carrier_url: str) -> AsyncIterator[web.Application]:
    """Overrides the API conftest's app: the fake clock, no timer, the test playbooks and the carrier
    tool; acme's gate needs two approvals (so one is recorded before the gate opens)."""
    tools = (f"tools:\n  - name: carrier\n    kind: http\n    url: {carrier_url}\n    retries: 0\n"
             "    timeout_seconds: 5\n")
    playbooks = {"test-review.yaml": REVIEW_PLAYBOOK, "test-review-urgent.yaml": URGENT_PLAYBOOK,
                 "test-tool.yaml": TOOL_PLAYBOOK, "test-step-fails.yaml": FAILING_STEP_PLAYBOOK,
                 "test-stepwise.yaml": STEPWISE_PLAYBOOK}
    config = config_with(tmp_path / "config", playbooks, [ACCOUNT_FLAGGED_RULE, *RULES], tools_yaml=tools)
    policies = config / "policies.yaml"
    policies.write_text(policies.read_text().replace(
        "      name: ops_lead_approval\n", "      name: ops_lead_approval\n      approvals_required: 2\n"))
    inbox = tmp_path / "data" / "inbox" / "acme"
    inbox.mkdir(parents=True)
    good = exception_body(source_id="inbox-1", sla_deadline=(clock.now + timedelta(hours=6)).isoformat())
    (inbox / "items.jsonl").write_bytes(orjson.dumps(good) + b"\n" + b'{"source": "crm"}\n')
    settings = Settings(data_dir=tmp_path / "data", config_dir=config, jwt_secret="k" * 40, scheduler_enabled=False)
    yield create_app(settings, clock=clock)


class Scenario:
    """The callers and the clock the paths below share."""

    def __init__(self, clock: FakeClock, token_for: Callable[..., str], client: TestClient, app: web.Application):
        self.clock = clock

        def caller(tenant: str, subject: str, *roles: str) -> Api:
            return Api(client, app, token_for(tenant, subject, roles or ("admin",)))

        self.ann, self.lee, self.kim = caller("acme", "ann"), caller("acme", "lee", "approver"), \
            caller("acme", "kim", "approver")
        self.bob, self.sue = caller("globex", "bob"), caller("globex", "sue", "approver")

    def deadline(self, minutes: float) -> str:
        return (self.clock.now + timedelta(minutes=minutes)).isoformat()

    async def ingest(self, api: Api, expected: str, **overrides: Any) -> str:
        body = exception_body(sla_deadline=self.deadline(360))
        body.update(overrides)
        status, answer, _ = await api.call("POST", "/api/v1/exceptions", json=body)
        assert status == 202, answer
        await api.settle()
        _, run, _ = await api.call("GET", f"/api/v1/runs/{answer['run_id']}")
        assert run["status"] == expected, run
        return answer["run_id"]

    async def decide(self, api: Api, run_id: str, decision: str, expected: int = 202) -> None:
        payload = {"decision": decision, **({"reason": "not ours"} if decision == "reject" else {})}
        status, body, _ = await api.call("POST", f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume",
                                         json={"payload": payload})
        assert status == expected, body
        await api.settle()

    async def trigger(self, api: Api, workflow: str, payload: dict[str, Any]) -> str:
        status, body, _ = await api.call("POST", f"/api/v1/workflows/{workflow}/trigger", json={"payload": payload})
        assert status == 202, body
        await self.finished(api, body["run_id"])
        return body["run_id"]

    async def finished(self, api: Api, run_id: str) -> None:
        """A job's run once it has ended, and the pipeline runs it started."""
        job = await api.app[JOBS].wait(run_id)
        assert job is None or job.status == "completed", job
        await api.settle()


async def drive_every_path(s: Scenario) -> None:
    acme, globex = s.ann, s.bob
    # acme: one run completes; three pause for approval (amount over 5,000) and are decided by people
    await s.ingest(acme, "completed")
    approved = await s.ingest(acme, "paused", amount="12000.00", currency="USD")
    await s.decide(s.lee, approved, "approve")  # one approval of the two the gate needs
    await s.decide(s.kim, approved, "approve")
    await s.decide(s.lee, await s.ingest(acme, "paused", amount="12000.00", currency="USD"), "reject")
    # ...and three more the SLA sweep will find: escalated, then rejected; one nears its SLA, one is past it
    for minutes in (360, 140, 60):
        await s.ingest(acme, "paused", amount="12000.00", currency="USD", sla_deadline=s.deadline(minutes))

    # globex (any playbook approved): a human step completed by someone it is not assigned to
    flagged = {"domain": "accounts", "type": "account.flagged", "amount": None, "currency": None}
    review = await s.ingest(globex, "waiting_for_input", **flagged)
    status, body, _ = await globex.call("POST", f"/api/v1/playbook-runs/{review}/complete-step/review",
                                        json={"outputs": {"decision": "clear", "risk_score": 0.1}})
    assert status == 200, body
    # a tool that answers, and one that fails (the run fails)
    await s.ingest(globex, "completed", domain="tests", type="tests.tool_call", source_id="ok")
    await s.ingest(globex, "failed", domain="tests", type="tests.tool_call", source_id="refused")
    # a step failing with on_failure: pause, then approved (the step is skipped)
    await s.decide(s.sue, await s.ingest(globex, "paused", domain="tests", type="tests.step_fails"), "approve")
    # no playbook at all: low confidence pauses it, and approving resolves it without one
    unknown = {"domain": "mystery", "type": "mystery.thing", "amount": None, "currency": None}
    await s.decide(s.sue, await s.ingest(globex, "paused", **unknown), "approve")
    # a stepwise playbook: each step waits for run-next-step
    stepwise = await s.ingest(globex, "resolving", domain="tests", type="tests.stepwise")
    for _ in range(2):
        status, body, _ = await globex.call("POST", f"/api/v1/runs/{stepwise}/run-next-step", json={"mode": "execute"})
        assert status == 200, body
    # a recalculation: 20 minutes before its SLA, the urgent playbook matches the flagged account
    recalculated = await s.ingest(globex, "waiting_for_input", **flagged, sla_deadline=s.deadline(120))
    s.clock.advance(minutes=100)
    status, body, _ = await globex.call("POST", f"/api/v1/runs/{recalculated}/playbook/recalculate", json={})
    assert status == 200 and body["changed"] is True, body

    # jobs: a manual pipeline run, an ingest of the inbox (one good item, one bad), two SLA sweeps
    await s.trigger(acme, "exception_pipeline", exception_body(sla_deadline=s.deadline(360)))
    await s.trigger(acme, "ingest", {"source": "acme_inbox"})
    s.clock.advance(minutes=21)  # 121 min: the approvals expired (reassigned); SLAs 19 min away and 61 min past
    await s.trigger(acme, "sla_sweep", {"near_minutes": 30})
    s.clock.advance(minutes=64)  # the escalation queue let them expire too: rejected
    await s.trigger(acme, "sla_sweep", {"near_minutes": 30})
    # a schedule fired (by hand), whose feedback digest covers the runs ended so far
    status, body, _ = await acme.call("POST", "/api/v1/schedules/daily-digest/run-now")
    assert status == 202, body
    await s.finished(acme, body["run_id"])


async def test_every_event_written_fits_its_topics_payload_model(app, client, token_for, clock):
    await drive_every_path(Scenario(clock, token_for, client, app))

    async with app[DB].connect() as conn:
        rows = (await conn.execute(select(events).order_by(events.c.id))).mappings().all()
    problems: dict[str, list[str]] = {}  # topic -> what was wrong with each of its events that failed
    seen: set[Topic] = set()
    for row in rows:
        where = f"event {row['id']} (run {row['run_id']}, seq {row['seq']})"
        if row["topic"] not in set(Topic):
            problems.setdefault(row["topic"], []).append(f"{where}: not a Topic")
            continue
        topic = Topic(row["topic"])
        seen.add(topic)
        try:
            PAYLOADS[topic].model_validate_json(orjson.dumps(row["payload"]), strict=True)
        except ValidationError as exc:
            problems.setdefault(topic, []).append(f"{where}: {exc}")
    assert not problems, "\n".join(
        f"{topic}: {len(found)} event(s) do not fit; the first, {found[0]}" for topic, found in problems.items()
    )
    assert set(Topic) - UNREACHABLE - seen == set(), "topics no path above wrote"
    assert UNREACHABLE & seen == set(), "topics listed as unreachable that a path now writes"
