"""call_tool steps really call: a local aiohttp server is the tool. Retries with backoff, failures
by the playbook's rule, and at most one call per (run, step) across a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.catalog import load_catalog
from eventbus import InProcessBus
from pipeline.engine import PipelineEngine
from store.events import EventRepository
from tests.config_copies import config_with
from tests.pipeline.carrier_tool import PLAYBOOK, catalog_with, run_through
from tests.stored import stored_run


async def test_the_tool_is_called_once_with_the_resolved_input_and_its_answer_feeds_later_steps(
    sqlite_db, clock, tmp_path, carrier
):
    tool, url = carrier
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    assert run.status == "resolving" and run.state.pending_calls == ["file-claim"]
    await engine.drain()
    await engine.stop()
    assert tool.requests == [{"key": f"{run.id}:file-claim", "body": {"reference": "ch_77", "amount": "42.50"}}]
    done = await stored_run(engine.runs, "globex", run.id)
    assert done.status == "completed"
    assert done.state.steps["file-claim"].outputs == {"claim_id": "CLM-1"}
    assert done.state.steps["note"].outputs == {"comment": "claim CLM-1 filed"}
    topics = [e.topic for e in await EventRepository(sqlite_db).for_run("globex", run.id)]
    assert topics.index("playbook.step_started") < topics.index("playbook.step_completed")


async def test_transient_failures_are_retried_with_backoff(sqlite_db, clock, tmp_path, carrier):
    tool, url = carrier
    tool.script = [503, 502, 200]
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    await engine.drain()
    await engine.stop()
    done = await stored_run(engine.runs, "globex", run.id)
    assert done.status == "completed" and done.state.steps["file-claim"].attempts == 3
    assert len(tool.requests) == 3 and {r["key"] for r in tool.requests} == {f"{run.id}:file-claim"}


@pytest.mark.parametrize(("on_failure", "status"), [("fail", "failed"), ("pause", "paused")])
async def test_a_tool_that_keeps_failing_fails_or_pauses_the_run(sqlite_db, clock, tmp_path, carrier, on_failure,
                                                                  status):
    tool, url = carrier
    tool.script = [500]
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url, on_failure=on_failure), clock)
    await engine.drain()
    await engine.stop()
    done = await stored_run(engine.runs, "globex", run.id)
    assert done.status == status and len(tool.requests) == 3
    assert "failed after 3 attempt(s)" in (done.state.steps["file-claim"].error or "")
    if status == "paused":
        pause = done.state.pause
        assert pause is not None and (pause.gate, pause.step_id) == ("step_failed", "file-claim")


async def test_a_refusal_is_not_retried(sqlite_db, clock, tmp_path, carrier):
    tool, url = carrier
    tool.script = [422]
    engine, run = await run_through(sqlite_db, catalog_with(tmp_path, url), clock)
    await engine.drain()
    await engine.stop()
    assert len(tool.requests) == 1
    assert (await stored_run(engine.runs, "globex", run.id)).status == "failed"


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_call_cut_short_by_a_crash_is_repeated_only_for_an_idempotent_tool(
    sqlite_db, clock, tmp_path, carrier, idempotent
):
    tool, url = carrier
    tool.hang = asyncio.Event()
    catalog = catalog_with(tmp_path, url, idempotent=idempotent)
    engine, run = await run_through(sqlite_db, catalog, clock)
    while not tool.requests:  # the call has reached the carrier...
        await asyncio.sleep(0)
    await engine.stop()  # ...and the service stops before the answer arrives
    tool.hang.set()
    tool.hang = None

    restarted = PipelineEngine(sqlite_db, InProcessBus(), catalog, clock=clock, workers=2)
    assert await restarted.start() == 1
    await restarted.drain()
    await restarted.stop()
    done = await stored_run(restarted.runs, "globex", run.id)
    keys = [r["key"] for r in tool.requests]
    if idempotent:
        assert keys == [f"{run.id}:file-claim"] * 2 and done.status == "completed"
    else:
        assert keys == [f"{run.id}:file-claim"] and done.status == "failed"
        assert "outcome is unknown" in (done.state.steps["file-claim"].error or "")


def test_a_playbook_calling_an_unregistered_tool_is_reported_at_its_line(tmp_path):
    playbooks = {"zz-carrier-claim.yaml": PLAYBOOK.replace("ON_FAILURE", "fail")}
    catalog = load_catalog(config_with(tmp_path / "config", playbooks))
    [problem] = catalog.problems
    assert problem.path.name == "zz-carrier-claim.yaml" and problem.line == 11
    assert problem.field == "steps[0].params.tool" and "zz-carrier-claim@1" not in catalog.playbooks


async def test_a_python_tool_registered_by_entry_point_is_called(monkeypatch):
    from importlib.metadata import EntryPoint

    import agents.tool_client as tool_client
    from agents.tool_client import ToolClient, ToolFailed
    from config.tools import ToolRegistry

    calls: list[dict[str, Any]] = []

    def lookup_fx(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(payload)
        return {"rate": 1.08}

    monkeypatch.setattr(tool_client, "lookup_fx", lookup_fx, raising=False)
    point = EntryPoint(name="fx_rate", value="agents.tool_client:lookup_fx", group="autopilot.tools")
    monkeypatch.setattr(tool_client, "entry_points", lambda group, name: [point] if name == "fx_rate" else [])
    tools = ToolRegistry.model_validate({"tools": [
        {"name": "fx", "kind": "python", "entry_point": "fx_rate", "retries": 0},
        {"name": "missing", "kind": "python", "entry_point": "nowhere", "retries": 3},
    ]})
    client = ToolClient(tools)
    assert await client.call("fx", {"pair": "EURUSD"}, idempotency_key="r:s") == ({"rate": 1.08}, 1)
    assert calls == [{"pair": "EURUSD"}]
    with pytest.raises(ToolFailed, match="no entry point 'nowhere'") as refused:
        await client.call("missing", {}, idempotency_key="r:s")
    assert refused.value.attempts == 1  # a missing entry point is not retried
