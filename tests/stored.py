"""Reading back a run a test has just written, where its absence is the test failing."""

from __future__ import annotations

from store.records import RunRecord
from store.runs import RunRepository


async def stored_run(runs: RunRepository, tenant_id: str, run_id: str) -> RunRecord:
    """The run as stored now; fails the test, naming the run, when there is none."""
    run = await runs.get(tenant_id, run_id)
    assert run is not None, f"run {run_id} of {tenant_id} is not stored"
    return run
