"""A webhook receiver on 127.0.0.1 for the tests: it keeps every request and answers as each
path is told to (a list of answers taken in turn, the last one repeated)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str = "ok"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        """The payload, checked with the ``standardwebhooks`` package (raises if the signature is wrong)."""
        return dict(Webhook(secret).verify(self.body, self.headers))


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[Answer]] = {}
        self.arrived = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/{path:.*}", self._handle)

    def answer(self, path: str, *answers: Answer) -> None:
        self.script[path] = list(answers)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        script = self.script.get(path, [Answer()])
        answer = script.pop(0) if len(script) > 1 else script[0]
        async with self.arrived:
            self.received.append(Received(path, dict(request.headers), body))
            self.arrived.notify_all()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, headers=answer.headers, text=answer.body)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.at(path)) >= count), timeout)
        return self.at(path)
