"""Two ``autopilot serve`` processes on one PostgreSQL database sending webhook deliveries: while
both live, each delivery is claimed by one of them and arrives once; when one is SIGKILLed with
deliveries in flight, the other takes its claims over and every owed delivery arrives."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.delivery.receiver import Answer, Receiver
from tests.e2e.server import Client, ServerProcess, token
from tests.fresh_database import fresh_database

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_database("autopilot_deliveries") as url:
        yield url


async def arrived_for(receiver: Receiver, secret: str, owed: set[int], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while {r.verified(secret)["data"]["event_id"] for r in receiver.received} < owed:
            await asyncio.sleep(0.1)


async def owed_events(client: Client) -> set[int]:
    return {event["id"] for run in await client.all_runs() for event in await client.events(run["id"])
            if event["topic"] == "run.completed"}


async def test_two_processes_share_the_deliveries_and_one_takes_over_a_killed_ones(
        tmp_path: Path, database: str, aiohttp_server: Any) -> None:
    receiver = Receiver()
    receiver.answer("hooks", Answer(delay=0.02))
    site = await aiohttp_server(receiver.app, host="127.0.0.1")
    env = {"AUTOPILOT_DATABASE_URL": database, "AUTOPILOT_SCHEDULER_ENABLED": "false",
           "AUTOPILOT_EXECUTOR_LEASE_SECONDS": "3", "AUTOPILOT_EXECUTOR_HEARTBEAT_SECONDS": "0.5",
           "AUTOPILOT_DELIVERY_ALLOWED_ADDRESSES": json.dumps(["127.0.0.1/32"]),
           "AUTOPILOT_DELIVERY_POLL_SECONDS": "0.1", "AUTOPILOT_DELIVERY_TIMEOUT_SECONDS": "5",
           "AUTOPILOT_DELIVERY_MAX_IN_FLIGHT": "8", "AUTOPILOT_LOG_LEVEL": "WARNING"}
    a, b = (ServerProcess(tmp_path / name / "data", extra_env=env) for name in "ab")
    await a.start()
    await b.start()
    try:
        async with aiohttp.ClientSession() as session:
            clients = [Client(session, a.base, token()), Client(session, b.base, token())]
            status, endpoint = await clients[0].call("POST", "/api/v1/webhooks", json={
                "url": f"http://127.0.0.1:{site.port}/hooks", "topics": ["run.completed"]})
            assert status == 201, endpoint
            turn = itertools.count()

            async def ingest(i: int) -> None:
                client = clients[next(turn) % len(clients)]
                try:
                    status, _ = await client.call("POST", "/api/v1/exceptions",
                                                  json=exception_body(source_id=f"ch_{i}"))
                except (aiohttp.ClientError, TimeoutError):
                    return  # the killed process's requests
                assert status == 202

            # both alive: every delivery once
            await asyncio.gather(*(ingest(i) for i in range(80)))
            owed = await owed_events(clients[1])
            await arrived_for(receiver, endpoint["secret"], owed)
            counts = collections.Counter(r.headers["webhook-id"] for r in receiver.received)
            assert len(counts) == len(owed) == 80 and set(counts.values()) == {1}, "a delivery sent twice"

            # one killed with deliveries in flight: the other sends what it had claimed
            receiver.answer("hooks", Answer(delay=0.5))
            before = len(receiver.received)
            await asyncio.gather(*(ingest(i) for i in range(80, 120)))
            await receiver.wait_for("hooks", before + 1)  # sending has begun; the rest are in flight or due
            a.kill()
            clients = clients[1:]
            owed = await owed_events(clients[0])
            await arrived_for(receiver, endpoint["secret"], owed)
            assert len(owed) == 120
            assert len(receiver.received) - before >= 40
            # what the killed process had sent but not recorded is sent again by the survivor once the
            # dead process's claims are taken over (its lease, 3 s): at least once, same webhook-id
            async with asyncio.timeout(30):
                while True:
                    status, pending = await clients[0].call(
                        "GET", f"/api/v1/deliveries?status=pending&endpoint_id={endpoint['id']}")
                    assert status == 200
                    if not pending["items"]:
                        break
                    await asyncio.sleep(0.2)
            by_id = collections.defaultdict(set)
            for arrival in receiver.received:
                by_id[arrival.headers["webhook-id"]].add(arrival.verified(endpoint["secret"])["data"]["event_id"])
            assert len(by_id) == 120 and all(len(events) == 1 for events in by_id.values())
    finally:
        for server in (a, b):
            if server.process is not None and server.process.poll() is None:
                server.stop()
