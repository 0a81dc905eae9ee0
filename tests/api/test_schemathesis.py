"""The API keeps to its OpenAPI document: schemathesis, with all its default checks and the stateful
phase's links, against the real app served over HTTP on 127.0.0.1 (SQLite, an admin's token, the
copilot pointed at a scripted model on loopback). A fixed seed and a bounded number of examples keep
it deterministic; ``./dev fuzz`` runs it longer with a random seed (``AUTOPILOT_FUZZ_EXAMPLES``,
``AUTOPILOT_FUZZ_SEED``). Its settings, and why each is so, are in ``schemathesis.toml`` beside it."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from api.app import create_app
from api.keys import PIPELINE, TOKENS
from config.settings import Settings
from tests.api.conftest import exception_body

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261124
EXAMPLES = 20
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-fuzz", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


async def _scripted_model(request: web.Request) -> web.Response:
    """A model that looks up the pending approvals once, then answers: the copilot's routes answer 200
    (and its stream sends a tool call and an answer) instead of 503 for want of a model."""
    body = await request.json()
    if body["messages"][-1]["role"] == "tool":
        return web.json_response(_completion({"role": "assistant", "content": "Nothing waits for you."}))
    call = {"id": "call_1", "type": "function", "function": {"name": "list_pending_approvals", "arguments": "{}"}}
    return web.json_response(_completion({"role": "assistant", "content": None, "tool_calls": [call]}))


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The app on a free loopback port with a few runs in it, and an admin's bearer token."""
    model = web.Application()
    model.router.add_post("/v1/chat/completions", _scripted_model)
    model_runner, model_url = await _serve(model)
    app = create_app(Settings(
        data_dir=tmp_path / "data", jwt_secret="fuzz-secret-" + "x" * 32,
        llm_base_url=f"{model_url}/v1", llm_model="scripted", llm_api_key="sk-fuzz",
    ))
    runner, base = await _serve(app)
    token = app[TOKENS].mint(tenant="acme", subject="fuzz", roles=["admin"], ttl=timedelta(hours=2))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for overrides in ({}, {"amount": "9000.00"}, {"type": "shipment.delayed", "domain": "logistics"}):
            async with session.post(f"{base}/api/v1/exceptions", json=exception_body(**overrides)) as response:
                assert response.status == 202, await response.text()
    await app[PIPELINE].drain()
    yield base, token
    await runner.cleanup()
    await model_runner.cleanup()


def _seed() -> int:
    """``AUTOPILOT_FUZZ_SEED``: a number, or ``random`` for a new one each run (printed, to replay it)."""
    chosen = os.environ.get("AUTOPILOT_FUZZ_SEED", str(SEED))
    return random.randrange(2**31) if chosen == "random" else int(chosen)


async def test_every_operation_keeps_to_the_openapi_document(served, tmp_path):
    base, token = served
    seed, examples = _seed(), int(os.environ.get("AUTOPILOT_FUZZ_EXAMPLES", EXAMPLES))
    command = [
        *SCHEMATHESIS, "--config-file", str(CONFIG), "--no-color", "run", f"{base}/openapi.json",
        "--header", f"Authorization: Bearer {token}", "--seed", str(seed), "--max-examples", str(examples),
    ]
    print(f"schemathesis: seed {seed}, {examples} examples per operation", flush=True)
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # where it keeps its cache of failing cases
    )
    output, _ = await process.communicate()  # the app answers on this loop meanwhile
    text = output.decode(errors="replace")
    print(text)
    assert process.returncode == 0, f"schemathesis failed (seed {seed}):\n{text[-20000:]}"
