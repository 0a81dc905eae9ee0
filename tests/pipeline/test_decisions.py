"""Whatever a tenant's gate schema allows, only "approve" lets a paused run go on."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from config.policies import DEFAULT_GATE_SCHEMA
from domain.errors import ValidationFailed
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.start_request import StartRequest
from tests.api.conftest import exception_body
from tests.stored import stored_run


async def test_a_gate_that_allows_other_decisions_still_approves_only_on_approve(db, catalog, clock):
    policy = catalog.policies.for_tenant("acme")
    schema = {**DEFAULT_GATE_SCHEMA, "properties": {"decision": {"enum": ["approve", "reject", "escalate"]}}}
    gate = policy.gate.model_copy(update={"payload_schema": schema})
    tenants = {"acme": policy.model_copy(update={"gate": gate})}
    lenient = replace(catalog, policies=catalog.policies.model_copy(update={"tenants": tenants}))
    engine = PipelineEngine(db, InProcessBus(), lenient, clock=clock, workers=1)
    await engine.start()
    try:
        body = dict(exception_body(amount="25000.00"), sla_deadline=(clock.now + timedelta(days=2)).isoformat())
        request = StartRequest("acme", "exception_pipeline", body, actor="user:x", trigger_type="api")
        run = await engine.start_run(request)
        assert run.status == "paused"
        with pytest.raises(ValidationFailed) as refused:
            await engine.resume("acme", "exception_pipeline", run.id, {"decision": "escalate"}, actor="user:y")
        assert refused.value.details[0]["field"] == "payload.decision"
        assert (await stored_run(engine.runs, "acme", run.id)).status == "paused"
    finally:
        await engine.stop()
