"""The event streams through a real server on a port: replay after Last-Event-ID while a burst is
ingested, heartbeats, clean-up when a client leaves, tenant and topic filters, the run stream,
the query-string token, the access log, shutdown. Slow clients: ``test_sse_slow.py``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import pytest

from api.sse import STREAMS, Streams
from config.settings import Settings
from tests.api.sse_client import Message, Stream, eventually, serve

STREAM = "/api/v1/events/stream"


def ids(items: list) -> list[int]:
    return [m.event_id for m in items] if items and isinstance(items[0], Message) else [e.id for e in items]


async def test_reconnecting_with_last_event_id_during_a_burst_loses_and_repeats_nothing(tmp_path):
    async with serve(tmp_path / "data") as server:
        await server.burst(10)
        await server.settle()
        start = (await server.log())[4].id  # resume from the middle of what was there before
        burst = asyncio.create_task(server.burst(200))
        received: list[Message] = []
        last, connections = start, 0
        while not (burst.done() and last >= (await server.log())[-1].id):
            stream = await server.stream(STREAM, headers={"Last-Event-ID": str(last)})
            connections += 1
            try:
                assert (await stream.next()).retry == 3000
                for _ in range(150):  # take some, then drop the connection and come back
                    try:
                        message = await stream.next(timeout=1)
                    except TimeoutError:
                        break  # nothing more for now: look whether the burst is over
                    received.append(message)
                    last = message.event_id
            finally:
                stream.close()
        await burst
        expected = await server.log(after=start)
        assert len(expected) > 200 * 11
        assert ids(received) == ids(expected)  # no gap, no duplicate, in log order
        assert connections > len(expected) // 150
        seqs: dict[str, list[int]] = defaultdict(list)
        for message in received:
            event = message.json()
            assert message.event == event["topic"] and message.event_id == event["id"]
            seqs[event["run_id"]].append(event["seq"])
        first_run = expected[0].run_id
        for run_id, run_seqs in seqs.items():
            begin = expected[0].seq if run_id == first_run else 1
            assert run_seqs == list(range(begin, begin + len(run_seqs))), run_id
        for run_id in list(seqs)[-3:]:  # the data is the event exactly as the REST timeline shows it
            async with server.session.get(f"{server.base}/api/v1/runs/{run_id}/events",
                                          headers=server.auth()) as response:
                timeline = (await response.json())["items"]
            assert [m.json() for m in received if m.json()["run_id"] == run_id] == timeline


async def test_an_idle_stream_sends_the_retry_hint_then_heartbeats(tmp_path):
    async with serve(tmp_path / "data", sse_heartbeat_seconds=0.05, sse_retry_ms=1500) as server:
        stream = await server.stream(STREAM)
        assert (await stream.next()).retry == 1500
        for _ in range(3):
            assert (await stream.next(timeout=5)).comment == "heartbeat"
        await server.ingest()  # events flow between heartbeats
        first = await stream.next(timeout=5)
        while first.comment == "heartbeat":
            first = await stream.next(timeout=5)
        assert first.event == "run.received"


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["like-autopilot-serve", "cancelling"])
async def test_a_client_that_leaves_is_cleaned_up(tmp_path, handler_cancellation):
    async with serve(tmp_path / "data", handler_cancellation=handler_cancellation) as server:
        run_id = await server.ingest(amount="20000.00")  # pauses: its stream stays open
        baseline = server.subscribers
        paths = [STREAM, f"{STREAM}?topics=run.*", f"/api/v1/runs/{run_id}/events/stream"]
        streams = [await server.stream(path) for path in paths]
        for stream in streams:
            assert (await stream.next()).retry == 3000
        assert (server.subscribers, server.open_streams) == (baseline + 3, 3)
        async with server.session.get(f"{server.base}/metrics") as response:
            assert "autopilot_sse_streams_open 3.0" in await response.text()
        for stream in streams:
            stream.close()
        await eventually(lambda: (server.subscribers, server.open_streams) == (baseline, 0))
        async with server.session.get(f"{server.base}/metrics") as response:
            assert "autopilot_sse_streams_open 0.0" in await response.text()
        stream = await server.stream(STREAM)  # the server streams on
        await server.ingest()
        assert (await stream.next()).retry == 3000
        assert (await stream.next()).event == "run.received"


async def test_a_tenant_sees_only_its_own_events(tmp_path):
    async with serve(tmp_path / "data") as server:
        theirs = await server.stream(STREAM, tenant="globex")
        await theirs.next()
        await server.burst(5, tenant="acme")
        paused = await server.ingest("acme", amount="20000.00")
        own = await server.ingest("globex")
        await server.settle()
        globex_log = await server.log("globex")
        got = await theirs.events(until_id=globex_log[-1].id)
        assert ids(got) == ids(globex_log) and {m.json()["run_id"] for m in got} == {own}
        replay = await server.stream(f"{STREAM}?last_event_id=0", tenant="globex")
        assert ids(await replay.events(until_id=globex_log[-1].id)) == ids(globex_log)
        for path in (f"/api/v1/runs/{paused}/events/stream", f"{STREAM}?run_id={paused}"):
            async with server.session.get(server.base + path, headers=server.auth("globex")) as response:
                assert response.status == 404 and (await response.json())["error"]["code"] == "RUN_NOT_FOUND"
        approver = {"Authorization": f"Bearer {server.token('acme', 'lee', ('approver',))}"}
        async with server.session.post(
            f"{server.base}/api/v1/workflows/exception_pipeline/runs/{paused}/resume",
            json={"payload": {"decision": "approve"}}, headers=approver,
        ) as response:
            assert response.status == 202
        await server.settle()  # acme's run moved on; globex's streams heard nothing of it
        later = await server.ingest("globex")
        for stream in (theirs, replay):
            message = await stream.next()
            assert message.json()["run_id"] == later and message.event == "run.received"


async def test_topic_patterns_and_the_run_stream(tmp_path):
    async with serve(tmp_path / "data") as server:
        topics = await server.stream(f"{STREAM}?topics=run.*,playbook.%23")
        await topics.next()
        paused = await server.ingest(amount="20000.00")
        await server.settle()
        run_stream = await server.stream(f"/api/v1/runs/{paused}/events/stream?last_event_id=0")
        assert (await run_stream.next()).retry == 3000
        replayed = await run_stream.events(until_id=(await server.log())[-1].id)
        assert [m.event for m in replayed] == ["run.received", "triage.completed", "policy.evaluated", "run.paused"]
        await server.ingest()  # another run: not on the run stream
        approver = {"Authorization": f"Bearer {server.token('acme', 'lee', ('approver',))}"}
        async with server.session.post(
            f"{server.base}/api/v1/workflows/exception_pipeline/runs/{paused}/resume",
            json={"payload": {"decision": "approve"}}, headers=approver,
        ) as response:
            assert response.status == 202
        await server.settle()
        log = await server.log()
        run_log = [e for e in log if e.run_id == paused]
        live = await run_stream.events(until_id=run_log[-1].id)
        assert ids(replayed + live) == ids(run_log) and run_log[-1].topic == "run.completed"
        wanted = [e for e in log if e.topic.startswith("playbook.") or (e.topic.startswith("run.")
                                                                          and e.topic.count(".") == 1)]
        got = await topics.events(until_id=wanted[-1].id)
        assert ids(got) == ids(wanted) and {m.event for m in got} >= {"run.received", "playbook.step_completed"}
        only_paused = await server.stream(f"/api/v1/runs/{paused}/events/stream?topics=run.*&last_event_id=0")
        await only_paused.next()
        expected = [e for e in run_log if e.topic.startswith("run.")]
        assert ids(await only_paused.events(until_id=expected[-1].id)) == ids(expected)


async def test_the_token_may_come_in_the_query_on_the_streams_only(tmp_path):
    async with serve(tmp_path / "data") as server:
        token = server.token()
        run_id = await server.ingest(amount="20000.00")
        for path in (STREAM, f"/api/v1/runs/{run_id}/events/stream"):
            response = await server.session.get(f"{server.base}{path}?access_token={token}")
            assert response.status == 200 and response.content_type == "text/event-stream"
            stream = Stream(response)
            assert (await stream.next()).retry == 3000
            stream.close()
            async with server.session.get(f"{server.base}{path}?access_token=not-a-token") as refused:
                assert refused.status == 401
        stranger = server.token("globex")
        async with server.session.get(f"{server.base}/api/v1/runs/{run_id}/events/stream?access_token={stranger}") as r:
            assert r.status == 404
        for path in ("/api/v1/runs", f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/events"):
            async with server.session.get(f"{server.base}{path}?access_token={token}") as response:
                body = await response.json()
                assert response.status == 401 and "only by the event streams" in body["error"]["message"]


async def test_the_access_log_never_shows_a_token(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with serve(tmp_path / "data") as server:
        token = server.token()
        stream = Stream(await server.session.get(f"{server.base}{STREAM}?topics=run.*&access_token={token}"))
        await stream.next()
        stream.close()
        await eventually(lambda: server.open_streams == 0)
        async with server.session.get(f"{server.base}/api/v1/runs?limit=5&access_token={token}") as response:
            assert response.status == 401
        await eventually(lambda: f'"GET {STREAM} HTTP/1.1" 200' in caplog.text and "/api/v1/runs?" in caplog.text)
    assert token not in caplog.text
    assert "/api/v1/runs?limit=5&access_token=redacted" in caplog.text


async def test_stopping_the_server_ends_open_streams(tmp_path):
    async with serve(tmp_path / "data") as server:  # its runner waits up to 30 s for handlers
        stream = await server.stream(STREAM)
        await stream.next()
        await asyncio.wait_for(server.runner.cleanup(), 5)
        with pytest.raises((EOFError, ConnectionError)):
            while True:
                await stream.next(timeout=5)
        assert server.app[STREAMS].open == 0


async def test_bad_stream_parameters_are_refused_before_streaming(tmp_path):
    async with serve(tmp_path / "data") as server:
        cases = [
            (STREAM, {"Last-Event-ID": "12abc"}, "header.Last-Event-ID"),
            (f"{STREAM}?last_event_id=-1", {}, "query.last_event_id"),
            (f"{STREAM}?topics=run..received", {}, "query.topics"),
            (f"{STREAM}?topics=,", {}, "query.topics"),
            (f"{STREAM}?tenant=globex", {}, "query.tenant"),
        ]
        for path, headers, field in cases:
            async with server.session.get(server.base + path, headers=server.auth(**headers)) as response:
                body = await response.json()
                assert response.status == 400, (path, body)
                assert field in [d["field"] for d in body["error"]["details"]], (path, body)
        async with server.session.get(f"{server.base}/openapi.json") as response:
            document = await response.json()
        for path in (STREAM, "/api/v1/runs/{run_id}/events/stream"):
            operation = document["paths"][path]["get"]
            assert "text/event-stream" in operation["responses"]["200"]["content"]
            assert "access_token" in [p["name"] for p in operation["parameters"]]


async def test_the_pacer_stretches_its_ticks_while_the_loop_is_late_and_shrinks_them_after(tmp_path):
    streams = Streams(Settings(data_dir=tmp_path, sse_flush_seconds=0.01))
    ticks: list[float] = []

    class Counting:
        def tick(self, now: float, check: bool) -> None:
            ticks.append(now)

    streams.add(Counting())  # type: ignore[arg-type]  # a stand-in: the pacer calls only tick()
    try:
        await eventually(lambda: len(ticks) >= 3)
        asyncio.get_running_loop().call_soon(time.sleep, 0.1)  # the loop is busy: the next tick is late
        await eventually(lambda: streams.pace >= 0.02)
        await eventually(lambda: streams.pace == 0.01)
    finally:
        streams.active.clear()
