"""The real service as a process, pointed at a scripted OpenAI-compatible server that this test
runs on loopback: a question over HTTP and the same through ``autopilot ask``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.api.conftest import exception_body
from tests.e2e.server import Client, ServerProcess, free_port

pytestmark = pytest.mark.e2e


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-e2e", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


class ScriptedEndpoint:
    """Answers like a model would, from the conversation alone: a new question asks for the paused
    runs; a tool result is answered by naming the runs it lists."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def completions(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer sk-e2e"
        body = await request.json()
        self.requests.append(body)
        last = body["messages"][-1]
        if last["role"] == "tool":
            paused = json.loads(last["content"])["untrusted_data"]["paused_runs"]
            reasons = "; ".join(f"{r['id']} waits at {r['pause']['gate']}" for r in paused)
            return web.json_response(_completion({"role": "assistant", "content": f"Paused: {reasons or 'none'}."}))
        call = {"id": "call_1", "type": "function", "function": {"name": "list_pending_approvals", "arguments": "{}"}}
        return web.json_response(_completion({"role": "assistant", "content": None, "tool_calls": [call]}))


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, ScriptedEndpoint]]:
    scripted = ScriptedEndpoint()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", scripted.completions)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/v1", scripted
    await runner.cleanup()


class CopilotServer(ServerProcess):
    def __init__(self, data_dir: Path, llm_url: str) -> None:
        super().__init__(data_dir)
        self.llm_url = llm_url

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "AUTOPILOT_LLM_BASE_URL": self.llm_url, "AUTOPILOT_LLM_MODEL": "scripted",
                "AUTOPILOT_LLM_API_KEY": "sk-e2e"}


async def test_ask_over_http_and_through_the_cli(tmp_path, endpoint):
    llm_url, scripted = endpoint
    server = CopilotServer(tmp_path / "data", llm_url)
    bearer = server.cli("token", "--tenant", "acme", "--sub", "ops", "--role", "operator").strip()
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, bearer)
            _, run = await api.call("POST", "/api/v1/exceptions", json=exception_body(amount="20000.00"))
            await api.settled()
            status, answer = await api.call("POST", "/api/v1/copilot/ask", json={"query": "What waits for approval?"})
        assert status == 200, answer
        assert answer["reply"] == f"Paused: {run['run_id']} waits at ops_lead_approval."
        assert [t["tool_name"] for t in answer["tools_used"]] == ["list_pending_approvals"]
        assert answer["iterations"] == 2

        cli = await asyncio.create_subprocess_exec(  # asyncio, so this loop keeps serving the endpoint meanwhile
            sys.executable, "-m", "api.cli", "ask", "Why did it pause?", "--thread", answer["thread_id"],
            "--url", server.base, env={**os.environ, "AUTOPILOT_TOKEN": bearer},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), timeout=60)
        assert cli.returncode == 0, err.decode()
        printed = out.decode()
        assert f"Paused: {run['run_id']} waits at ops_lead_approval." in printed
        assert "list_pending_approvals({})" in printed and answer["thread_id"] in printed
        follow_up = scripted.requests[-2]["messages"]
        assert [m["content"] for m in follow_up if m["role"] == "user"] == ["What waits for approval?",
                                                                             "Why did it pause?"]
    finally:
        assert server.stop() == 0
