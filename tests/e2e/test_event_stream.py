"""The event stream from the real ``autopilot serve`` process: the token in the query string works
on the stream, a reconnect resumes with Last-Event-ID, and the server's own log never shows the token."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.conftest import exception_body
from tests.api.sse_client import Stream
from tests.e2e.server import Client, ServerProcess

pytestmark = pytest.mark.e2e


async def test_a_browser_style_stream_resumes_and_its_token_stays_out_of_the_log(tmp_path):
    server = ServerProcess(tmp_path / "data")
    viewer = server.cli("token", "--tenant", "acme", "--sub", "screen", "--role", "viewer").strip()
    operator = server.cli("token", "--tenant", "acme", "--sub", "ops", "--role", "operator").strip()
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Client(session, server.base, operator)
            url = f"{server.base}/api/v1/events/stream?topics=run.*&access_token={viewer}"
            stream = Stream(await session.get(url))
            assert stream.response.status == 200 and (await stream.next()).retry == 3000
            _, first = await api.call("POST", "/api/v1/exceptions", json=exception_body())
            received = await stream.next()
            assert (received.event, received.json()["run_id"]) == ("run.received", first["run_id"])
            stream.close()

            _, second = await api.call("POST", "/api/v1/exceptions", json=exception_body(source_id="ch_2"))
            await api.settled()
            resumed = Stream(await session.get(url, headers={"Last-Event-ID": str(received.event_id)}))
            await resumed.next()
            topics = {(m.json()["run_id"], m.event) for m in await resumed.events(
                until_id=(await api.events(second["run_id"]))[-1]["id"])}
            assert (first["run_id"], "run.completed") in topics and (second["run_id"], "run.received") in topics
            assert (first["run_id"], "run.received") not in topics  # it came before Last-Event-ID
            resumed.close()
        assert server.stop() == 0
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
    log = (tmp_path / "server-1.log").read_text()
    assert "GET /api/v1/events/stream HTTP/1.1" in log
    assert viewer not in log and "access_token" not in log
