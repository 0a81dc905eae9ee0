"""The benchmark's clients: stream readers that count and time what they receive, and the
ingester, which posts exceptions on a fixed schedule in a process of its own (``sse_fanout.py``)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

DATA_MARK = b"\ndata: "
CREATED_MARK = b'"created_at":"'
RECEIVED_MARK = b"event: run.received\ndata: "
RUN_MARK = b'"run_id":"'
PROBE_EVERY = 10
"""Every tenth client parses what it receives, timing every event; the others only count theirs,
so that the clients' own work does not hide the server's latency."""


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


class Fleet:
    """What the clients saw, added up."""

    def __init__(self, n: int) -> None:
        self.ready = 0
        self.counts = [0] * n
        self.latencies: list[float] = []  # ms, events created after `measure_from` only
        self.measure_from = float("inf")
        self.overflows = 0
        self.errors: list[str] = []
        self.all_ready = asyncio.Event()
        self.n = n
        self.created_at: dict[bytes, float] = {}
        self.received: list[tuple[str, float]] = []  # (run_id, when), probe clients only
        self.answered: dict[str, float] = {}  # run_id -> when its 202 arrived, measured ingest only


async def stream_client(i: int, session: aiohttp.ClientSession, url: str, bearer: str, fleet: Fleet,
                        gate: asyncio.Semaphore) -> None:
    """Read one stream until cancelled and count its events; a probe client (every
    ``PROBE_EVERY``-th) also times each event from its created_at, and notes its run.received."""
    async with gate:
        response = await session.get(url, headers={"Authorization": f"Bearer {bearer}"})
    try:
        if response.status != 200:
            fleet.errors.append(f"client {i}: {response.status} {await response.text()}")
            return
        first = await response.content.readany()  # the retry: line: subscribed
        fleet.ready += 1
        if fleet.ready == fleet.n:
            fleet.all_ready.set()
        if i % PROBE_EVERY:
            await count_only(i, response, fleet, first)
        else:
            await probe(i, response, fleet, first)
    except aiohttp.ClientError as exc:
        fleet.errors.append(f"client {i}: {exc!r}")
    finally:
        response.close()


async def count_only(i: int, response: aiohttp.ClientResponse, fleet: Fleet, carry: bytes) -> None:
    """Count events at C speed: a marker is 7 bytes, so one split between two reads lies within
    the last 6 bytes of one and the first 6 of the next, and none is counted twice."""
    counts, read = fleet.counts, response.content.readany
    counts[i] += carry.count(DATA_MARK)
    carry = carry[-6:]
    while chunk := await read():
        counts[i] += chunk.count(DATA_MARK) + (carry + chunk[:6]).count(DATA_MARK)
        if b"stream.overflow" in chunk:
            fleet.overflows += 1
        carry = chunk[-6:]


async def probe(i: int, response: aiohttp.ClientResponse, fleet: Fleet, buffer: bytes) -> None:
    """Parse whole messages: time every event from its created_at, note each run.received."""
    now_ts, created_at, latencies, read = time.time, fleet.created_at, fleet.latencies, response.content.readany
    while chunk := await read():
        now = now_ts()
        buffer += chunk
        end = buffer.rfind(b"\n\n")
        if end < 0:
            continue
        complete, buffer = buffer[: end + 2], buffer[end + 2:]
        position = complete.find(DATA_MARK)
        while position >= 0:
            start = complete.find(CREATED_MARK, position) + len(CREATED_MARK)
            stop = complete.find(b'"', start)
            stamp = complete[start:stop]
            created = created_at.get(stamp)
            if created is None:  # every client sees the same events: parse each stamp once
                created = created_at[stamp] = datetime.fromisoformat(stamp.decode()).timestamp()
            fleet.counts[i] += 1
            if created >= fleet.measure_from:
                latencies.append((now - created) * 1000)
            position = complete.find(DATA_MARK, stop)
        position = complete.find(RECEIVED_MARK)
        while position >= 0:
            start = complete.find(RUN_MARK, position) + len(RUN_MARK)
            stop = complete.find(b'"', start)
            fleet.received.append((complete[start:stop].decode(), now))
            position = complete.find(RECEIVED_MARK, stop)
        if b"event: stream.overflow" in complete:
            fleet.overflows += 1


async def ingest(base: str, bearers: list[str], rate: float, seconds: float, offset: int,
                 record: dict[str, Any] | None) -> int:
    """Post ``rate`` exceptions a second for ``seconds``, on a fixed schedule (not closed-loop)."""
    deadline = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    total, started = int(rate * seconds), time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()

    async def post(i: int) -> None:
        body = {"source": "bench", "source_id": f"ch_{offset + i}", "domain": "payments", "type": "payment.failed",
                "code": "card_declined", "amount": "40.00", "currency": "USD", "sla_deadline": deadline,
                "context": {"customer_email": f"customer{offset + i}@example.com"}}
        sent = time.perf_counter()
        async with session.post(f"{base}/api/v1/exceptions", json=body,
                                headers={"Authorization": f"Bearer {bearers[i % len(bearers)]}"}) as response:
            if response.status != 202:
                raise RuntimeError(f"ingest answered {response.status}: {await response.text()}")
            run_id = (await response.json())["run_id"]
        if record is not None:
            record["ingest_ms"].append((time.perf_counter() - sent) * 1000)
            record["answered"][run_id] = time.time()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(post(i))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    return total


def ingester(base: str, bearers: list[str], rate: float, warmup: float, duration: float, start_at: float,
             results: Any) -> None:
    """The ingest, in a process of its own, so that reading the streams cannot hold it back."""

    async def both() -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        if warmup:
            await ingest(base, bearers, rate, warmup, 0, None)
        record: dict[str, Any] = {"ingest_ms": [], "answered": {}}
        started = time.perf_counter()
        record["posted"] = await ingest(base, bearers, rate, duration, 10**7, record)
        record["seconds"] = time.perf_counter() - started
        return record

    results.send(asyncio.run(both()))
