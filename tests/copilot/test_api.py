"""The copilot's routes in the real app: the answer's shape, the error envelope for each failure,
threads per tenant, and the streaming variant's events."""

from __future__ import annotations

from datetime import timedelta

import httpx
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from api.keys import TOKENS
from tests.api.conftest import Api, exception_body
from tests.copilot.ask_route import ASK, sse
from tests.copilot.conftest import call, completion, llm_settings


async def test_ask_answers_with_the_tools_used(apis, model):
    acme, _ = apis
    model.answers(completion(None, call("list_runs", status=["paused"])), completion("Nothing is paused."))
    status, body, headers = await acme.call("POST", ASK, json={"query": "what is paused?"})
    assert status == 200, body
    assert body["reply"] == "Nothing is paused." and body["iterations"] == 2 and not body["limit_reached"]
    assert body["tools_used"] == [{"tool_name": "list_runs", "input_summary": '{"status": ["paused"]}',
                                   "output_summary": '{"untrusted_data":{"runs":[],"count":0,"newest_first":true}}'}]
    assert body["thread_id"].startswith("thr_") and headers["X-Request-Id"]


async def test_the_query_is_checked(apis, model):
    acme, _ = apis
    for body in ({"query": "hi"}, {"query": "x" * 2001}, {}, {"query": "what now?", "tenant": "globex"}):
        status, answer, _ = await acme.call("POST", ASK, json=body)
        assert status == 400 and answer["error"]["code"] == "VALIDATION_FAILED", body
    assert model.route.call_count == 0


async def test_each_upstream_failure_has_its_status(apis, model):
    acme, _ = apis
    model.answers(httpx.Response(502), httpx.Response(500), httpx.ReadTimeout("slow"))
    status, body, _ = await acme.call("POST", ASK, json={"query": "what is paused?"})
    assert status == 502 and body["error"]["code"] == "COPILOT_UPSTREAM_ERROR"
    assert body["error"]["details"] == {"upstream_status": 500, "attempts": 2} and body["request_id"]
    status, body, _ = await acme.call("POST", ASK, json={"query": "what is paused?"})
    assert status == 504 and body["error"]["code"] == "COPILOT_UPSTREAM_TIMEOUT"
    model.finish()


async def test_without_a_model_the_answer_is_503_naming_the_settings(tmp_path):
    app = create_app(llm_settings(tmp_path, llm_base_url=None, llm_model=None))
    async with TestClient(TestServer(app)) as client:
        api = Api(client, app, app[TOKENS].mint(tenant="acme", subject="ann", roles=["viewer"], ttl=timedelta(hours=1)))
        await _not_configured(api)


async def _not_configured(api: Api) -> None:
    status, body, _ = await api.call("POST", ASK, json={"query": "what is paused?"})
    assert status == 503 and body["error"]["code"] == "COPILOT_UNAVAILABLE"
    assert body["error"]["message"].startswith("The copilot is not configured")
    assert body["error"]["details"] == {"missing_settings": ["AUTOPILOT_LLM_BASE_URL", "AUTOPILOT_LLM_MODEL"]}
    status, body, _ = await api.call("POST", ASK + "/stream", json={"query": "what is paused?"})
    assert status == 503 and body["error"]["code"] == "COPILOT_UNAVAILABLE"


async def test_threads_are_per_tenant(apis, model):
    acme, globex = apis
    model.answers(completion("first"), completion("second"))
    _, first, _ = await acme.call("POST", ASK, json={"query": "what is paused?"})
    status, body, _ = await globex.call("POST", ASK, json={"query": "and now?", "thread_id": first["thread_id"]})
    assert status == 404 and body["error"]["code"] == "THREAD_NOT_FOUND"
    status, body, _ = await acme.call("POST", ASK, json={"query": "and now?", "thread_id": first["thread_id"]})
    assert status == 200 and body["thread_id"] == first["thread_id"]
    assert [m["content"] for m in model.requests[1]["messages"] if m["role"] != "system"] == [
        "what is paused?", "first", "and now?"]


async def test_the_stream_sends_tool_calls_then_the_answer(apis, model):
    acme, _ = apis
    admin = Api(acme.client, acme.app, acme.app[TOKENS].mint(tenant="acme", subject="ann", roles=["operator"],
                                                             ttl=timedelta(hours=1)))
    _, accepted, _ = await admin.call("POST", "/api/v1/exceptions", json=exception_body(amount="20000.00"))
    model.answers(completion(None, call("list_pending_approvals")),
                  completion(None, call("get_run", run_id=accepted["run_id"])), completion("One run waits."))
    status, events = await sse(acme, {"query": "what waits?"})
    assert status == 200
    assert [kind for kind, _ in events] == ["tool_call", "tool_call", "answer"]
    assert events[0][1]["tool_name"] == "list_pending_approvals"
    assert accepted["run_id"] in events[0][1]["output_summary"]
    assert events[2][1]["reply"] == "One run waits." and events[2][1]["iterations"] == 3


async def test_a_failure_mid_stream_is_an_error_event(apis, model):
    acme, _ = apis
    model.answers(completion(None, call("list_runs")), httpx.Response(500), httpx.Response(500))
    status, events = await sse(acme, {"query": "what failed?"})
    assert status == 200 and [kind for kind, _ in events] == ["tool_call", "error"]
    assert events[1][1]["error"]["code"] == "COPILOT_UPSTREAM_ERROR" and events[1][1]["status"] == 502
