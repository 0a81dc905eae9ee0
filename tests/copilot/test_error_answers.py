"""Malformed model output and out-of-range tool arguments are answered as the copilot's errors
(or tool errors for the model), and a failure mid-stream ends the stream with an error event:
never a 500 or a stream that never ends."""

from __future__ import annotations

import json

import httpx
import pytest

from domain.errors import CopilotUpstreamFailed
from tests.copilot.ask_route import ASK, sse
from tests.copilot.conftest import call, completion


def _raw(body: dict) -> httpx.Response:
    return httpx.Response(200, json=body)


NO_CHOICES = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
NOT_A_COMPLETION = {"error": "overloaded"}
NO_MESSAGE = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop"}]}


@pytest.mark.parametrize("body", [NO_CHOICES, NOT_A_COMPLETION, NO_MESSAGE])
async def test_a_malformed_completion_is_an_upstream_error(copilot_for, model, body):
    model.answers(_raw(body))
    with pytest.raises(CopilotUpstreamFailed):
        await copilot_for().ask("acme", "what is paused?")


@pytest.mark.parametrize("body", [NO_CHOICES, NOT_A_COMPLETION])
async def test_a_malformed_completion_answers_502_over_http(apis, model, body):
    acme, _ = apis
    model.answers(_raw(body))
    status, answer, _ = await acme.call("POST", ASK, json={"query": "what is paused?"})
    assert status == 502, answer
    assert answer["error"]["code"] == "COPILOT_UPSTREAM_ERROR"


async def test_a_malformed_completion_mid_stream_is_an_error_event(apis, model):
    acme, _ = apis
    model.answers(completion(None, call("list_runs")), _raw(NO_CHOICES))
    status, events = await sse(acme, {"query": "what is paused?"})
    assert status == 200
    assert [kind for kind, _ in events] == ["tool_call", "error"]
    assert events[-1][1]["error"]["code"] == "COPILOT_UPSTREAM_ERROR"


@pytest.mark.parametrize("tool_call", [
    call("list_runs", created_after="0001-01-01T00:00:00+01:00"),
    call("list_runs", created_before="9999-12-31T23:59:59-05:00"),
    call("search_events", text="run", since="9999-12-31T23:59:59-05:00"),
    call("search_events", text="run", until="0001-01-01T00:30:00+01:00"),
])
async def test_a_time_out_of_range_is_a_tool_error_for_the_model(copilot_for, model, tool_call):
    model.answers(completion(None, tool_call), completion("I could not read that range."))
    answer = await copilot_for().ask("acme", "what happened back then?")
    model.finish()
    assert answer.reply == "I could not read that range."
    output = json.loads(model.tool_messages(1)[0]["content"])
    assert output["error"] == "invalid arguments", output


async def test_an_unexpected_failure_mid_stream_ends_the_stream_with_an_error_event(apis, model, monkeypatch):
    """Once the stream is under way no error answer is possible: the client must get an error
    event and the end of the body, not wait forever on a response that never ends."""
    import asyncio
    import dataclasses

    from copilot import tools

    async def broken(scope, args):  # noqa: ANN001, ANN202
        raise RuntimeError("the database went away")

    monkeypatch.setitem(tools.TOOLS, "list_schedules", dataclasses.replace(tools.TOOLS["list_schedules"], run=broken))
    acme, _ = apis
    model.answers(completion(None, call("list_runs")), completion(None, call("list_schedules")))
    status, events = await asyncio.wait_for(sse(acme, {"query": "what is scheduled?"}), 10)
    assert status == 200
    assert [kind for kind, _ in events] == ["tool_call", "error"]
    assert events[-1][1]["error"]["code"] == "INTERNAL_ERROR" and events[-1][1]["status"] == 500
    assert "database" not in json.dumps(events[-1][1])
