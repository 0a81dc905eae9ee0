"""The webhook receiver ``bench.deliveries`` sends to, a process of its own so it does not share
the pipeline's core: it counts each delivery, remembers its ``webhook-id`` (distinct deliveries),
and times it from the message's ``timestamp`` (its event's or its notify step's, stamped just
before the commit) to its arrival."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime
from multiprocessing.process import BaseProcess

import orjson
from aiohttp import web

from bench.http_bare import wait_answering
from tests.e2e.cluster import consecutive_free_ports


class Receiver:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.received = 0
        self.ids: set[str] = set()
        self.latencies_ms: list[float] = []
        self.first = self.last = 0.0

    async def hook(self, request: web.Request) -> web.Response:
        message = orjson.loads(await request.read())
        now = time.time()
        self.first = self.first or now
        self.last = now
        self.received += 1
        self.ids.add(request.headers["webhook-id"])
        self.latencies_ms.append((now - datetime.fromisoformat(message["timestamp"]).timestamp()) * 1000)
        return web.Response(text="ok")

    async def stats(self, _: web.Request) -> web.Response:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 1) if ordered else None

        return web.json_response({"received": self.received, "distinct": len(self.ids), "first": self.first,
                                  "last": self.last, "p50_ms": pct(0.5), "p99_ms": pct(0.99)})

    async def clear(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/reset", self.clear)
        return app


def serve(port: int) -> None:
    web.run_app(Receiver().app(), host="127.0.0.1", port=port, access_log=None, print=None)


async def start_receiver() -> tuple[BaseProcess, str]:
    port = consecutive_free_ports(1)
    process = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    process.start()
    base = f"http://127.0.0.1:{port}"
    await wait_answering(f"{base}/stats", process)
    return process, base
