"""Three real ``autopilot serve`` processes on one PostgreSQL database, as replicas behind a load
balancer: a burst of ingests spread across them, approvals and human steps sent to another
process than the one that took the ingest, tool calls to a real HTTP tool, and one process
SIGKILLed mid-burst. Afterwards every accepted request has exactly one run, no run is left
active, every run's log is gap-free, no step ran twice and no tool call was made twice, and the
dead process's runs were taken over within the lease. A stream on a surviving process saw every
event of its tenant once, in commit order; a client that reconnected to another process with
Last-Event-ID missed nothing."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.database import open_engine
from tests.api.conftest import exception_body
from tests.api.sse_client import Message, Stream
from tests.config_copies import ACCOUNT_FLAGGED_RULE, REVIEW_PLAYBOOK, config_with
from tests.e2e.server import ServerProcess, token
from tests.fresh_database import fresh_database
from tests.pipeline.carrier_tool import PLAYBOOK as CARRIER_PLAYBOOK
from tests.pipeline.carrier_tool import Carrier

pytestmark = pytest.mark.e2e

TENANT = "globex"  # the tenant the test playbooks are approved for
BURST = 240
KILL_AFTER = 90
LEASE, HEARTBEAT = 3.0, 0.5
TAKEOVER_BOUND = LEASE + HEARTBEAT + 2.0  # the lease, one sweep, and the time to advance what was taken
ACTIVE = ("received", "triaged", "policy_evaluated", "resumed", "resolving", "resolved")
ONCE_PER_RUN = (
    "run.received", "triage.completed", "policy.evaluated", "run.paused", "playbook.started",
    "playbook.completed", "run.resolved", "feedback.recorded", "run.completed", "dashboard.hitl_resumed",
)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for the cluster; its URL."""
    async with fresh_database("autopilot_e2e") as url:
        yield url


@pytest.fixture
async def tool() -> AsyncIterator[tuple[Carrier, str]]:
    """The carrier's claim API, answering slowly enough that a kill lands mid-call."""
    carrier = Carrier()
    handle = carrier.handle

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return await handle(request)

    app = web.Application()
    app.router.add_post("/claims", slow)
    server = TestServer(app)
    await server.start_server()
    yield carrier, str(server.make_url("/claims"))
    await server.close()


def cluster(tmp_path: Path, url: str, tool_url: str) -> list[ServerProcess]:
    tools = (f"tools:\n  - name: carrier_claim\n    kind: http\n    url: {tool_url}\n    retries: 0\n"
             f"    backoff_seconds: 0\n    timeout_seconds: 5\n    idempotent: false\n")
    playbooks = {"test-review.yaml": REVIEW_PLAYBOOK, "zz-carrier.yaml": CARRIER_PLAYBOOK.replace("ON_FAILURE", "fail")}
    config = config_with(tmp_path / "config", playbooks, [ACCOUNT_FLAGGED_RULE], tools_yaml=tools)
    env = {
        "AUTOPILOT_DATABASE_URL": url, "AUTOPILOT_SCHEDULER_ENABLED": "false",
        "AUTOPILOT_EXECUTOR_LEASE_SECONDS": str(LEASE), "AUTOPILOT_EXECUTOR_HEARTBEAT_SECONDS": str(HEARTBEAT),
    }
    return [ServerProcess(tmp_path / name / "data", config_dir=config, extra_env=env) for name in "abc"]


class Follower:
    """An SSE client reading a stream in the background, from a position (or the live end)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, last_event_id: int | None = None) -> None:
        self.session, self.base, self.last_event_id = session, base, last_event_id
        self.received: list[Message] = []
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        headers = {"Authorization": f"Bearer {token(TENANT)}"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        response = await self.session.get(f"{self.base}/api/v1/events/stream", headers=headers)
        assert response.status == 200
        stream = Stream(response)
        assert (await stream.next()).retry is not None  # the stream is open: what follows is live

        async def read() -> None:
            while True:
                message = await stream.next(timeout=120)
                if message.data is not None:
                    self.received.append(message)

        self.task = asyncio.create_task(read())

    async def until(self, last_id: int, timeout: float = 60) -> list[int]:
        deadline = time.monotonic() + timeout
        while not self.received or self.received[-1].event_id < last_id:
            assert time.monotonic() < deadline, f"the stream stopped at {self.ids[-1:]} before {last_id}"
            await asyncio.sleep(0.05)
        return self.ids

    @property
    def ids(self) -> list[int]:
        return [m.event_id for m in self.received]

    def close(self) -> None:
        assert self.task is not None
        self.task.cancel()


async def rows(db: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with db.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def settle(db: AsyncEngine) -> None:
    while await rows(db, f"SELECT id FROM runs WHERE status IN {ACTIVE!r}"):
        await asyncio.sleep(0.1)


async def test_three_processes_lose_nothing_repeat_nothing_and_take_over_a_killed_ones_work(
    tmp_path, database, tool
):
    carrier, tool_url = tool
    servers = cluster(tmp_path, database, tool_url)
    for server in servers:
        await server.start()
    a, b, c = servers
    db = open_engine(database)
    accepted: dict[str, str] = {}  # idempotency key -> run id
    killed_at: list[float] = []
    seconds = 0.0
    try:
        assert a.process is not None
        (dead_executor,) = [r.id for r in await rows(db, "SELECT id FROM executors WHERE pid = :pid",
                                                     pid=a.process.pid)]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=48)) as session:
            watcher = Follower(session, c.base)  # on a process that survives
            await watcher.open()
            mover = Follower(session, b.base)  # will reconnect to another process mid-burst
            await mover.open()
            alive = list(servers)
            turn = itertools.count()
            takeover: list[asyncio.Task[float]] = []

            async def taken_over() -> float:
                """Seconds from the kill until no run of the dead process is left active."""
                query = f"SELECT id FROM runs WHERE executor_id = '{dead_executor}' AND status IN {ACTIVE!r}"
                while await rows(db, query):
                    assert time.monotonic() - killed_at[0] < 60, "the dead process's runs were never taken over"
                    await asyncio.sleep(0.05)
                return time.monotonic() - killed_at[0]

            async def call(method: str, path: str, body: Any, key: str, avoid: ServerProcess | None = None,
                           subject: str = "e2e"):
                """As a client behind a load balancer: a process that is gone is retried on another
                with the same Idempotency-Key. Returns the answer and the process that gave it."""
                for _ in range(6):
                    choices = [s for s in alive if s is not avoid] or alive
                    server = choices[next(turn) % len(choices)]
                    headers = {"Authorization": f"Bearer {token(TENANT, subject=subject)}", "Idempotency-Key": key}
                    try:
                        async with session.request(method, server.base + path, json=body, headers=headers) as r:
                            return r.status, await r.json(), server
                    except (aiohttp.ClientError, TimeoutError):
                        if server in alive and server.process is not None and server.process.poll() is not None:
                            alive.remove(server)
                raise AssertionError(f"{method} {path} failed on every process")

            async def send(i: int) -> None:
                if i % 3 == 0:
                    body = exception_body(source_id=f"acct_{i}", domain="accounts", type="account.flagged",
                                          amount=None, currency=None)
                else:
                    body = exception_body(source_id=f"ch_{i}", amount="25000.00" if i % 5 == 0 else "30.00")
                status, answer, server = await call("POST", "/api/v1/exceptions", body, f"ingest-{i}")
                assert status == 202, answer
                accepted[f"ingest-{i}"] = answer["run_id"]
                if len(accepted) == KILL_AFTER:
                    a.kill()
                    killed_at.append(time.monotonic())
                    takeover.append(asyncio.create_task(taken_over()))
                    mover.close()  # its process lives on, but the client moves to c
                    mover.last_event_id = mover.ids[-1] if mover.ids else None
                run_id = answer["run_id"]
                if answer["status"] == "paused":
                    status, _, _ = await call(
                        "POST", f"/api/v1/workflows/exception_pipeline/runs/{run_id}/resume",
                        {"payload": {"decision": "approve"}}, f"resume-{i}", avoid=server, subject="lead")
                    assert status == 202
                elif answer["status"] == "waiting_for_input":
                    status, _, _ = await call(
                        "POST", f"/api/v1/playbook-runs/{run_id}/complete-step/review",
                        {"outputs": {"decision": "clear", "risk_score": 0.1}}, f"step-{i}", avoid=server)
                    assert status == 200

            await asyncio.gather(*(send(i) for i in range(BURST)))
            moved_from = mover.ids[:]
            mover = Follower(session, c.base, mover.last_event_id)
            await mover.open()

            assert takeover, "the burst ended before the kill"
            seconds = await takeover[0]
            await asyncio.wait_for(settle(db), timeout=60)
            assert not await rows(db, f"SELECT id FROM runs WHERE status IN {ACTIVE!r}")
            (last_id,) = (await rows(db, f"SELECT max(id) FROM events WHERE tenant_id = '{TENANT}'"))[0]
            watched = await watcher.until(last_id)
            moved = moved_from + await mover.until(last_id)
            watcher.close()
            mover.close()

        # every accepted request has exactly one run, and every run was accepted
        runs = {r.id: r for r in await rows(db, "SELECT id, status, executor_id FROM runs")}
        assert len(accepted) == BURST and set(accepted.values()) == set(runs)
        assert {r.status for r in runs.values()} <= {"completed", "failed"}, collections.Counter(
            r.status for r in runs.values())
        # every run's log is gap-free, and nothing happened twice
        log = await rows(
            db, f"SELECT id, run_id, seq, topic, payload FROM events WHERE tenant_id = '{TENANT}' ORDER BY id"
        )
        by_run: dict[str, list[Any]] = collections.defaultdict(list)
        for event in log:
            by_run[event.run_id].append(event)
        for run_id, events in by_run.items():
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), run_id
            topics = collections.Counter(e.topic for e in events)
            assert all(topics[t] <= 1 for t in ONCE_PER_RUN), (run_id, topics)
            steps = [e.payload["step_id"] for e in events if e.topic == "playbook.step_completed"]
            assert len(steps) == len(set(steps)), (run_id, steps)
        keys = collections.Counter(request["key"] for request in carrier.requests)
        assert keys, "no tool call was made"
        assert max(keys.values()) == 1, "a tool call was made twice"
        # the killed process's runs went to the others within the bound
        assert seconds <= TAKEOVER_BOUND, f"taken over {seconds:.1f} s after the kill"
        # streams: every event of the tenant, once each, in commit order, on a survivor and across a move
        first = watched[0]
        expected = [e.id for e in log if e.id >= first]
        assert watched == expected
        assert moved_from and moved == [e.id for e in log if e.id >= moved_from[0]]
    finally:
        await db.dispose()
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                server.stop()
