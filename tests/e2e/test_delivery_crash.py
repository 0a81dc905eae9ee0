"""SIGKILL the server while webhook deliveries are in flight and their events are being
committed: after a restart, every committed event a subscriber asked for arrives at least once,
nothing arrives for an event that never committed, and every repeat carries a webhook-id the
receiver has seen, so it can drop it."""

from __future__ import annotations

import asyncio
import collections
import json

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.delivery.receiver import Answer, Receiver
from tests.e2e.server import Client, ServerProcess, token

pytestmark = pytest.mark.e2e

BURST = 300
KILL_AFTER = 150
TOPICS = ("run.received", "run.completed")


async def test_a_killed_server_delivers_every_committed_event_after_restart(tmp_path, aiohttp_server):
    receiver = Receiver()
    receiver.answer("hooks", Answer(delay=0.02))  # slow enough that deliveries are in flight at the kill
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    server = ServerProcess(tmp_path / "data", extra_env={
        "AUTOPILOT_DELIVERY_ALLOWED_ADDRESSES": json.dumps(["127.0.0.1/32"]),
        "AUTOPILOT_DELIVERY_POLL_SECONDS": "0.1", "AUTOPILOT_DELIVERY_RETRY_FIRST_SECONDS": "0.1",
        "AUTOPILOT_DELIVERY_TIMEOUT_SECONDS": "2", "AUTOPILOT_LOG_LEVEL": "WARNING",
    })
    await server.start()
    killed = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        api = Client(session, server.base, token())
        status, endpoint = await api.call("POST", "/api/v1/webhooks", json={
            "url": f"http://127.0.0.1:{site.port}/hooks", "topics": list(TOPICS)})
        assert status == 201, endpoint
        accepted = 0

        async def send(i: int) -> None:
            nonlocal accepted
            try:
                status, _ = await api.call("POST", "/api/v1/exceptions", json=exception_body(source_id=f"ch_{i}"))
            except (TimeoutError, aiohttp.ClientError):
                assert killed.is_set(), "requests may only fail once the server is killed"
                return
            assert status == 202
            accepted += 1
            if accepted == KILL_AFTER and not killed.is_set():
                killed.set()
                server.kill()

        await asyncio.gather(*(send(i) for i in range(BURST)))
    assert killed.is_set()
    arrived_before_restart = len(receiver.received)

    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, token())
            await api.settled()
            owed = {}
            for run in await api.all_runs():
                for event in await api.events(run["id"]):
                    if event["topic"] in TOPICS:
                        owed[event["id"]] = event["topic"]
            async with asyncio.timeout(60):
                while {m["data"]["event_id"] for m in _messages(receiver, endpoint["secret"])} < set(owed):
                    await asyncio.sleep(0.1)
    finally:
        server.stop()

    messages = _messages(receiver, endpoint["secret"])
    assert {m["data"]["event_id"] for m in messages} == set(owed), "a delivery for an uncommitted event, or a lost one"
    assert all(m["type"] == owed[m["data"]["event_id"]] for m in messages)
    by_id = collections.defaultdict(set)
    for arrival, message in zip(receiver.received, messages, strict=True):
        by_id[arrival.headers["webhook-id"]].add(message["data"]["event_id"])
    assert all(len(events) == 1 for events in by_id.values()), "one webhook-id for two events"
    assert len(by_id) == len(owed), "a repeat under a new webhook-id could not be deduped"
    assert 0 < arrived_before_restart < len(owed), "the kill should fall while deliveries were being sent"
    print(f"owed {len(owed)}, arrived {len(messages)} ({len(messages) - len(owed)} repeats), "
          f"{arrived_before_restart} before the restart")


def _messages(receiver: Receiver, secret: str) -> list[dict]:
    return [arrival.verified(secret) for arrival in receiver.received]
