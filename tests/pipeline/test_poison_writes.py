"""A write the database refuses fails alone: the other runs in its group commit still land."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from pipeline.start_request import StartRequest
from store.records import RunRecord
from tests.api.conftest import exception_body


async def test_a_write_the_store_refuses_does_not_fail_its_batch(db, catalog, clock):
    engine = PipelineEngine(db, InProcessBus(), catalog, clock=clock, workers=1)
    await engine.start()
    try:
        good = dict(exception_body(), sla_deadline=(clock.now + timedelta(hours=6)).isoformat())
        bad = dict(good, sla_deadline="9999-12-31T23:59:59-01:00")  # bypasses the API's validation
        calls = [engine.start_run(StartRequest(tenant, "exception_pipeline", body, actor="user:x", trigger_type="api"))
                 for tenant, body in [("acme", good), ("globex", good), ("acme", bad), ("globex", good)]]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(outcomes[2], Exception)
        assert [o.status for o in outcomes if isinstance(o, RunRecord)] == ["completed"] * 3
    finally:
        await engine.stop()

