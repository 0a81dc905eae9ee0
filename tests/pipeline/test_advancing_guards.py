"""Looking at a run, or another tenant naming it, never takes it from the worker that owns it;
a recalculation waits for a tool call in flight."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import LoopConflict, RunNotFound
from tests.pipeline.carrier_tool import catalog_with, run_through
from tests.stored import stored_run


async def test_a_dry_run_does_not_make_the_worker_drop_a_queued_run(sqlite_db, clock, tmp_path, carrier):
    tool, url = carrier
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    assert run.status == "resolving"  # the claim is committed and the run queued for a worker
    await engine.run_next_step("globex", run.id, execute=False)
    await engine.drain()
    done = await stored_run(engine.runs, "globex", run.id)
    await engine.stop()
    assert tool.requests and done.status == "completed"


async def test_another_tenant_naming_a_run_gets_404_and_changes_nothing(sqlite_db, clock, tmp_path, carrier):
    tool, url = carrier
    tool.hang = asyncio.Event()
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    while not tool.requests:  # a worker is advancing the run right now
        await asyncio.sleep(0)
    try:
        for execute in (False, True):
            with pytest.raises(RunNotFound):
                await engine.run_next_step("acme", run.id, execute=execute)
    finally:
        tool.hang.set()
        await engine.drain()
    done = await stored_run(engine.runs, "globex", run.id)
    await engine.stop()
    assert done.status == "completed"


async def test_a_recalculation_waits_for_a_tool_call_in_flight(sqlite_db, clock, tmp_path, carrier):
    tool, url = carrier
    tool.hang = asyncio.Event()
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    while not tool.requests:
        await asyncio.sleep(0)
    try:
        with pytest.raises(LoopConflict, match="tool call in flight"):
            await engine.recalculate("globex", run.id, actor="user:ana")
    finally:
        tool.hang.set()
        await engine.drain()
    done = await stored_run(engine.runs, "globex", run.id)
    await engine.stop()
    assert done.status == "completed" and len(tool.requests) == 1
