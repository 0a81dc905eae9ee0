"""The carrier-claim tool that call_tool tests call: a local HTTP tool answering from a script,
a catalog whose playbook calls it, and a run started through that playbook."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from config.catalog import Catalog, load_catalog
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.start_request import StartRequest
from tests.api.conftest import exception_body
from tests.config_copies import config_with

PLAYBOOK = """\
id: zz-carrier-claim
name: File a carrier claim
priority: 1000
match: {domain: payments, exception_type: "payment.failed"}
steps:
  - id: file-claim
    name: File the claim with the carrier
    action: call_tool
    on_failure: ON_FAILURE
    params:
      tool: carrier_claim
      input: {reference: "{exception.source_id}", amount: "{exception.amount}"}
    outputs:
      claim_id: {type: string}
  - id: note
    name: Record the claim
    action: add_comment
    params: {text: "claim {steps.file-claim.outputs.claim_id} filed"}
"""


@dataclass
class Carrier:
    """The tool: answers from a script of statuses, remembers every request."""

    script: list[int] = field(default_factory=lambda: [200])
    requests: list[dict[str, Any]] = field(default_factory=list)
    hang: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"key": request.headers.get("Idempotency-Key"), "body": await request.json()})
        if self.hang is not None:
            await self.hang.wait()
        status = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if status != 200:
            return web.json_response({"error": "carrier unavailable"}, status=status)
        return web.json_response({"claim_id": f"CLM-{len(self.requests)}"})


def catalog_with(tmp_path: Path, url: str, *, on_failure: str = "fail", idempotent: bool = False) -> Catalog:
    tools = (
        f"tools:\n  - name: carrier_claim\n    kind: http\n    url: {url}\n    retries: 2\n"
        f"    backoff_seconds: 0\n    timeout_seconds: 5\n    idempotent: {str(idempotent).lower()}\n"
    )
    playbooks = {"zz-carrier-claim.yaml": PLAYBOOK.replace("ON_FAILURE", on_failure)}
    catalog = load_catalog(config_with(tmp_path / "config", playbooks, tools_yaml=tools))
    assert catalog.problems == []
    return catalog


async def run_through(db, catalog, clock) -> tuple[PipelineEngine, Any]:
    engine = PipelineEngine(db, InProcessBus(), catalog, clock=clock, workers=2)
    await engine.start()
    body = dict(exception_body(source_id="ch_77"), sla_deadline=(clock.now + timedelta(hours=6)).isoformat())
    run = await engine.start_run(StartRequest("globex", "exception_pipeline", body, actor="user:x", trigger_type="api"))
    return engine, run
