"""The copilot's loop against a scripted model and a real store with two tenants: tools really
run, the answer lists them, follow-ups see the thread, and log text cannot widen what is read."""

from __future__ import annotations

import json

import httpx
import pytest

from copilot.service import Copilot
from copilot.tools import TOOLS
from domain.errors import CopilotUnavailable, CopilotUpstreamFailed, CopilotUpstreamTimeout, ThreadNotFound
from tests.copilot.conftest import GLOBEX_MARKER, INJECTION, call, completion, llm_settings


async def test_tools_run_against_the_store_and_the_answer_lists_them(copilot_for, model, seeded):
    model.answers(
        completion(None, call("get_run", run_id=seeded.acme_paused)),
        completion(None, call("get_run_events", run_id=seeded.acme_paused, topic="run.*")),
        completion(f"Run {seeded.acme_paused} paused for approval: the amount is over the limit."),
    )
    answer = await copilot_for().ask("acme", f"why did run {seeded.acme_paused} pause?")
    model.finish()
    assert answer.reply.startswith(f"Run {seeded.acme_paused} paused")
    assert answer.iterations == 3 and not answer.limit_reached
    assert [t["tool_name"] for t in answer.tools_used] == ["get_run", "get_run_events"]
    assert seeded.acme_paused in answer.tools_used[0]["input_summary"]

    first = model.requests[0]
    assert {t["function"]["name"] for t in first["tools"]} == set(TOOLS)
    assert first["model"] == "test-model" and first["messages"][0]["role"] == "system"
    run_output = json.loads(model.tool_messages(1)[0]["content"])["untrusted_data"]
    assert run_output["status"] == "paused" and run_output["pause"]["gate"] == "ops_lead_approval"
    assert "amount" in json.dumps(run_output["pause"]["reason"])
    events = json.loads(model.tool_messages(2)[1]["content"])["untrusted_data"]["events"]
    assert [e["topic"] for e in events] == ["run.received", "run.paused"]


def test_no_tool_takes_a_tenant():
    for tool in TOOLS.values():
        properties = tool.definition()["function"]["parameters"].get("properties", {})
        assert not any("tenant" in name for name in properties), tool.name


async def test_an_injection_in_the_log_cannot_reach_another_tenant(copilot_for, model, seeded):
    """The model (scripted as if it obeyed the injected text) tries every way a tool call could
    name tenant globex; each read stays within acme."""
    model.answers(
        completion(None, call("search_events", text="ignore your instructions")),
        completion(None, call("list_runs", tenant_id="globex"), call("get_run", run_id=seeded.globex_paused),
                   call("get_run_events", run_id=seeded.globex_paused),
                   call("search_events", text="globex-secret")),
        completion(None, call("list_runs"), call("list_pending_approvals"), call("workflow_statistics")),
        completion("acme has one paused run; I cannot see other organisations."),
    )
    answer = await copilot_for().ask("acme", "anything odd in the log?")
    model.finish()

    found = json.loads(model.tool_messages(1)[0]["content"])["untrusted_data"]["events"]
    assert found and all(e["run_id"] == seeded.acme_done for e in found)
    wrong_tenant, other_run, other_events, marker = (json.loads(m["content"]) for m in model.tool_messages(2)[1:])
    assert wrong_tenant["error"] == "invalid arguments" and "tenant_id" in wrong_tenant["problems"][0]
    assert other_run["untrusted_data"] == {"error": f"no run {seeded.globex_paused}"}
    assert other_events["untrusted_data"] == {"error": f"no run {seeded.globex_paused}"}
    assert marker["untrusted_data"]["events"] == []
    listed = [json.loads(m["content"])["untrusted_data"] for m in model.tool_messages(3)[-3:]]
    assert {r["id"] for r in listed[0]["runs"]} == {seeded.acme_paused, seeded.acme_done}
    assert [r["id"] for r in listed[1]["paused_runs"]] == [seeded.acme_paused]
    assert sum(g["runs"] for g in listed[2]["groups"].values()) == 2

    everything_sent = json.dumps(model.requests)
    assert GLOBEX_MARKER not in everything_sent and GLOBEX_MARKER not in json.dumps(answer.tools_used)
    fragment = INJECTION[-32:]  # "then print their customer emails."
    seen = 0
    for request in model.requests:  # the log's text reaches the model only as tool output, wrapped
        for message in request["messages"]:
            if fragment in json.dumps(message):
                seen += 1
                assert message["role"] == "tool" and message["content"].startswith('{"untrusted_data":')
    assert seen  # it did reach the model, as data
    assert "untrusted" in model.requests[0]["messages"][0]["content"]


async def test_a_follow_up_sees_the_thread_and_another_tenant_cannot(copilot_for, model, seeded):
    copilot = copilot_for()
    model.answers(
        completion(None, call("list_pending_approvals")),
        completion(f"One run waits: {seeded.acme_paused}."),
        completion("It waits for the ops_lead_approval gate."),
    )
    first = await copilot.ask("acme", "what waits for approval?")
    second = await copilot.ask("acme", "which gate?", first.thread_id)
    model.finish()
    assert second.thread_id == first.thread_id and second.iterations == 1 and second.tools_used == []
    roles = [m["role"] for m in model.requests[2]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert model.requests[2]["messages"][4]["content"] == f"One run waits: {seeded.acme_paused}."
    with pytest.raises(ThreadNotFound):
        await copilot.ask("globex", "which gate?", first.thread_id)
    with pytest.raises(ThreadNotFound):
        await copilot.ask("acme", "which gate?", "thr_never_made")


async def test_a_thread_keeps_only_the_last_turns(copilot_for, model, seeded):
    copilot = copilot_for(copilot_thread_turns=1)
    model.answers(completion("one"), completion("two"), completion("three"))
    first = await copilot.ask("acme", "question one")
    await copilot.ask("acme", "question two", first.thread_id)
    await copilot.ask("acme", "question three", first.thread_id)
    users = [m["content"] for m in model.requests[2]["messages"] if m["role"] == "user"]
    assert users == ["question two", "question three"]


async def test_without_an_endpoint_it_says_what_to_set(seeded, catalog, clock, tmp_path):
    copilot = Copilot(llm_settings(tmp_path, llm_base_url=None, llm_model=None), seeded.db, catalog, client=None,
                      clock=clock)
    with pytest.raises(CopilotUnavailable) as raised:
        await copilot.ask("acme", "anything?")
    assert "AUTOPILOT_LLM_BASE_URL" in raised.value.message and "AUTOPILOT_LLM_MODEL" in raised.value.message


async def test_429_and_5xx_are_retried_then_it_answers(copilot_for, model):
    model.answers(httpx.Response(429, json={"error": {"message": "slow down"}}),
                  httpx.Response(503, json={"error": {"message": "busy"}}), completion("fine"))
    answer = await copilot_for(llm_max_retries=2).ask("acme", "anything?")
    model.finish()
    assert answer.reply == "fine" and answer.iterations == 1


async def test_5xx_until_the_retries_run_out_is_an_upstream_failure(copilot_for, model):
    model.answers(*[httpx.Response(500, json={"error": {"message": "down"}})] * 3)
    with pytest.raises(CopilotUpstreamFailed) as raised:
        await copilot_for(llm_max_retries=2).ask("acme", "anything?")
    model.finish()
    assert raised.value.details == {"upstream_status": 500, "attempts": 3}


async def test_a_refusal_is_not_retried(copilot_for, model):
    model.answers(httpx.Response(401, json={"error": {"message": "bad key"}}))
    with pytest.raises(CopilotUpstreamFailed) as raised:
        await copilot_for(llm_max_retries=2).ask("acme", "anything?")
    model.finish()
    assert raised.value.details["upstream_status"] == 401 and "bad key" in raised.value.message


async def test_a_timeout_is_an_upstream_timeout(copilot_for, model):
    model.answers(httpx.ReadTimeout("no answer"))
    with pytest.raises(CopilotUpstreamTimeout):
        await copilot_for(llm_max_retries=2).ask("acme", "anything?")
    model.finish()


async def test_the_iteration_limit_answers_with_what_was_found(copilot_for, model, seeded):
    model.answers(
        completion(None, call("list_pending_approvals")),
        completion(None, call("get_run", run_id=seeded.acme_paused)),
        completion(None, call("get_run_events", run_id=seeded.acme_paused)),  # ignored: no tools on the last turn
    )
    answer = await copilot_for(copilot_max_iterations=3).ask("acme", "dig into everything")
    model.finish()
    assert answer.limit_reached and answer.iterations == 3
    assert "tools" in model.requests[1] and "tools" not in model.requests[2]
    assert answer.reply.startswith("I stopped after 3 steps")
    assert [t["tool_name"] for t in answer.tools_used] == ["list_pending_approvals", "get_run"]
    assert seeded.acme_paused in answer.reply  # what the tools returned, since the model gave no text


async def test_bad_arguments_and_unknown_tools_go_back_to_the_model(copilot_for, model):
    model.answers(completion(None, call("get_run", id="x"), call("drop_table", table="runs")), completion("sorry"))
    answer = await copilot_for().ask("acme", "anything?")
    outputs = [json.loads(m["content"]) for m in model.tool_messages()]
    assert outputs[0]["error"] == "invalid arguments" and "no tool named 'drop_table'" in outputs[1]["error"]
    assert answer.reply == "sorry"
