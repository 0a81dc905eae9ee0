"""The copilot's ask route, and a reader for its streaming variant's events."""

from __future__ import annotations

import json

from tests.api.conftest import Api

ASK = "/api/v1/copilot/ask"


async def sse(api: Api, body: dict) -> tuple[int, list[tuple[str, dict]]]:
    response = await api.client.post(ASK + "/stream", json=body, headers=api.headers())
    if response.content_type != "text/event-stream":
        return response.status, [("http", await response.json())]
    events = []
    for block in (await response.text()).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return response.status, events
