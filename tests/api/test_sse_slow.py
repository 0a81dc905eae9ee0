"""Slow clients: a stream whose client stops reading overflows its small inbox, which leaves the
bus at once, so neither the pipeline nor the other clients wait for it. When the client reads
again it is caught up from the log (every event exactly once, in order), or, when it is further
behind than ``sse_catchup_max``, it gets a final ``stream.overflow`` event and can resume with
Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Any

from api.sse import STREAMS, WRITE_SLICE
from tests.api.sse_client import Message, SlowStream, Stream, eventually, serve

STREAM = "/api/v1/events/stream"
CATCHING_UP = "overflow: catching up from the log"
SMALL: dict[str, Any] = {"sse_queue_max": 1000, "sse_send_buffer_bytes": 16384}
"""An inbox far larger than any one commit of the burst (8 clients x 11 events), so only a client that
stops reading overflows, and a small socket buffer, so the server notices soon that it stopped."""


async def collect(stream: Stream, into: list[Message]) -> None:
    while True:
        message = await stream.next(timeout=60)
        if message.data is not None:
            into.append(message)


def ids(items: list) -> list[int]:
    return [m.event_id for m in items] if items and isinstance(items[0], Message) else [e.id for e in items]


async def test_a_slow_client_is_caught_up_from_the_log_and_slows_nobody(tmp_path):
    async with serve(tmp_path / "data", **SMALL) as server:
        slow = await SlowStream.open(server.port, STREAM, server.auth())
        assert slow.status == 200 and (await slow.next()).retry == 3000  # subscribed; now it stops reading
        healthy = await server.stream(STREAM)
        await healthy.next()
        assert server.subscribers == 2
        healthy_got: list[Message] = []
        reader = asyncio.create_task(collect(healthy, healthy_got))
        await server.burst(200)  # every 202 arrives while the slow client reads nothing
        await server.settle()
        log = await server.log()
        assert len(log) == 200 * 11
        await eventually(lambda: bool(healthy_got) and healthy_got[-1].event_id >= log[-1].id, timeout=30)
        reader.cancel()
        assert ids(healthy_got) == ids(log) and CATCHING_UP not in healthy.comments
        assert server.subscribers == 1  # the slow one's inbox overflowed and left the bus
        assert server.app[STREAMS].catchups == 0  # its handler still waits on the full socket

        got = await slow.events(until_id=log[-1].id, timeout=60)
        assert ids(got) == ids(log)  # every event exactly once, in order
        assert CATCHING_UP in slow.comments
        streams = server.app[STREAMS]
        assert streams.catchups >= 1 and streams.overflow_ends == 0
        assert server.subscribers == 2  # subscribed again, live
        after = await server.ingest()
        message = await slow.next()
        assert message.json()["run_id"] == after and message.event == "run.received"


async def test_a_client_too_far_behind_gets_a_final_overflow_event_then_resumes_with_last_event_id(tmp_path):
    async with serve(tmp_path / "data", **SMALL, sse_catchup_max=100) as server:
        slow = await SlowStream.open(server.port, STREAM, server.auth())
        assert (await slow.next()).retry == 3000
        await server.burst(200)
        await server.settle()
        log = await server.log()

        got: list[Message] = []
        while not got or got[-1].event != "stream.overflow":
            message = await slow.next(timeout=30)
            if message.data is not None:
                got.append(message)
        final, sent = got[-1], got[:-1]
        assert final.id is None and final.json()["last_event_id"] == sent[-1].event_id
        assert ids(sent) == ids(log)[: len(sent)] and len(sent) < len(log)  # a gap-free prefix
        assert CATCHING_UP in slow.comments
        try:
            while True:
                await slow.next(timeout=10)
        except EOFError:
            pass  # the stream ended after the final event
        assert server.app[STREAMS].overflow_ends == 1 and server.open_streams == 0

        resumed = await server.stream(STREAM, headers={"Last-Event-ID": final.json()["last_event_id"].__str__()})
        assert (await resumed.next()).retry == 3000
        rest = await resumed.events(until_id=log[-1].id)
        assert ids(sent) + ids(rest) == ids(log)


async def test_stopping_the_server_does_not_wait_for_a_client_that_reads_nothing(tmp_path):
    async with serve(tmp_path / "data", **SMALL) as server:  # its runner would wait 30 s for handlers
        slow = await SlowStream.open(server.port, STREAM, server.auth())
        await slow.next()
        await server.burst(200)
        await server.settle()
        assert server.subscribers == 0  # it overflowed: its handler waits on the full socket
        await asyncio.wait_for(server.runner.cleanup(), 5)
        assert server.open_streams == 0


async def test_a_backlog_is_written_in_slices_so_a_stream_never_buffers_it_whole(tmp_path):
    async with serve(tmp_path / "data", sse_queue_max=5000, sse_send_buffer_bytes=16384) as server:
        slow = await SlowStream.open(server.port, STREAM, server.auth())
        await slow.next()
        await server.burst(300)  # about 1.8 MB of events wait for a client that reads nothing
        await server.settle()
        log = await server.log()
        assert server.subscribers == 1 and server.app[STREAMS].catchups == 0  # queued, not overflowed
        got = await slow.events(until_id=log[-1].id, timeout=60)
        assert ids(got) == ids(log)
        assert 0 < server.app[STREAMS].peak_write <= WRITE_SLICE  # the 1.8 MB backlog went out in slices
