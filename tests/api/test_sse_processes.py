"""Two servers on one PostgreSQL database, as two processes behind a load balancer: runs are
ingested through both while a client follows the stream, reconnecting with ``Last-Event-ID`` to
one server, then the other. It receives every event of its tenant once, in log order: each
server's bus follows the log itself (``eventbus/feed_bus.py``), so the stream's handoff from log
to bus holds across processes as it does in one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.keys import BUS
from eventbus.feed_bus import FeedBus
from tests.api.sse_client import Message, serve
from tests.fresh_database import fresh_database

STREAM = "/api/v1/events/stream"


async def test_a_stream_reconnecting_across_processes_during_a_burst_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    async with fresh_database("t_sse") as url, serve(
        tmp_path / "a", database_url=url, scheduler_enabled=False
    ) as a, serve(tmp_path / "b", database_url=url, scheduler_enabled=False) as b:
        assert isinstance(a.app[BUS], FeedBus) and isinstance(b.app[BUS], FeedBus)
        await a.burst(5)
        await b.burst(5)
        start = (await a.log())[3].id
        bursts = asyncio.gather(a.burst(120, workers=4), b.burst(120, workers=4))
        received: list[Message] = []
        last, connections = start, 0
        while not (bursts.done() and last >= (await a.log())[-1].id):
            server = (a, b)[connections % 2]
            stream = await server.stream(STREAM, headers={"Last-Event-ID": str(last)})
            connections += 1
            try:
                assert (await stream.next()).retry is not None
                for _ in range(100):  # take some, then come back through the other process
                    try:
                        message = await stream.next(timeout=2)
                    except TimeoutError:
                        break
                    received.append(message)
                    last = message.event_id
            finally:
                stream.close()
        await bursts
        expected = [e.id for e in await b.log(after=start)]
        assert len(expected) > 240 * 3
        assert [m.event_id for m in received] == expected  # no gap, no duplicate, in commit order
        assert connections > 2
