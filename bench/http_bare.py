"""The bare aiohttp handler ``bench.http`` compares every route with, a process of its own.

Any request to ``/bare?bytes=N`` reads the body and answers N bytes: aiohttp with one handler and
nothing else, so a route's ratio to it is what our code costs on top of the framework. The same
process plays the OpenAI-compatible model of the LLM triage phase (``/v1/chat/completions``, each
call answered after ``model_delay`` seconds; ``/v1/calls`` counts them).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from multiprocessing.process import BaseProcess

import aiohttp
from aiohttp import web

from tests.e2e.cluster import consecutive_free_ports

MODEL_ANSWER = {"domain": "orders", "type": "order.stuck", "severity": "medium", "confidence": 0.9,
                "rationale": "an order held in the warehouse is an order stuck in fulfilment"}


class BareServer:
    """The floor to compare with: aiohttp with one handler and nothing else, no access log. It
    also plays an OpenAI-compatible model that answers each call after ``model_delay`` seconds."""

    def __init__(self, model_delay: float) -> None:
        self.model_delay = model_delay
        self.model_calls = 0
        self.completion = json.dumps({
            "id": "bench", "object": "chat.completion", "created": 0, "model": "bench-triage",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(MODEL_ANSWER)}}],
        }).encode()

    async def fixed_body(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b" " * int(request.query.get("bytes", "2")), content_type="application/json")

    async def chat_completion(self, request: web.Request) -> web.Response:
        self.model_calls += 1
        await request.read()
        await asyncio.sleep(self.model_delay)
        return web.Response(body=self.completion, content_type="application/json")

    async def calls(self, _: web.Request) -> web.Response:
        return web.json_response({"calls": self.model_calls})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bare", self.fixed_body)
        app.router.add_post("/v1/chat/completions", self.chat_completion)
        app.router.add_get("/v1/calls", self.calls)
        return app


def serve_bare(port: int, model_delay: float) -> None:
    web.run_app(BareServer(model_delay).app(), host="127.0.0.1", port=port, access_log=None, print=None)


async def wait_answering(url: str, alive: BaseProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if not alive.is_alive():
                raise RuntimeError("the bare server exited")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


async def start_bare(model_delay: float) -> tuple[BaseProcess, str]:
    port = consecutive_free_ports(1)
    process = multiprocessing.get_context("spawn").Process(target=serve_bare, args=(port, model_delay), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{port}"
    await wait_answering(f"{base}/bare", process)
    return process, base
