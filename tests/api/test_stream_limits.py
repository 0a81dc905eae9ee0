"""Event streams at the edges of their inputs: a Last-Event-ID that is no event id or lies past
any, the largest one, and topic patterns of hundreds of hashes (in the matcher, the bus and the
stream)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from eventbus import InProcessBus, topic_matches
from store.records import EventRecord
from tests.api.conftest import exception_body
from tests.api.sse_client import serve

STREAM = "/api/v1/events/stream"


@pytest.mark.parametrize("header", ["9999999999999999999", "\u00b2", "\u00b9\u00b3"])
async def test_a_last_event_id_header_that_is_no_event_id_is_a_400(api, header):
    status, body, _ = await api.call("GET", STREAM, headers={"Last-Event-ID": header})
    assert status == 400, body
    assert body["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("value", ["9223372036854775808", "99999999999999999999999"])
async def test_a_last_event_id_past_any_event_id_is_a_400(api, value):
    status, body, _ = await api.call("GET", f"{STREAM}?last_event_id={value}")
    assert status == 400, body
    assert body["error"]["code"] == "VALIDATION_FAILED"


async def test_the_largest_event_id_still_streams(tmp_path):
    async with serve(tmp_path / "data", sse_heartbeat_seconds=0.05) as server:
        await server.ingest()
        await server.settle()
        stream = await server.stream(f"{STREAM}?last_event_id=9223372036854775807")
        assert (await stream.next(timeout=5)).retry == 3000
        # a heartbeat after the replay: the stream is still open, not ended by an error
        assert (await stream.next(timeout=5)).comment == "heartbeat"


def _event(event_id: int, tenant: str = "acme", topic: str = "run.received") -> EventRecord:
    return EventRecord(id=event_id, tenant_id=tenant, run_id="run_1", seq=event_id, topic=topic, actor="user:ann",
                       request_id=None, payload={}, created_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


def test_a_long_pattern_of_hashes_matches_quickly_and_without_recursion_errors():
    started = time.perf_counter()
    assert not topic_matches(".".join(["#"] * 499) + ".x", "run.received")
    assert topic_matches(".".join(["#"] * 499), "run.received")
    assert topic_matches(".".join(["#", "*"] * 3) + ".#", "playbook.step_completed.x")
    assert not topic_matches(".".join(["#"] * 40) + ".x", "a.b.c.d.e")
    assert time.perf_counter() - started < 1


def test_the_matcher_keeps_its_meaning():
    cases = [("#", "run.received", True), ("run.*", "run.received", True), ("run.*", "run", False),
             ("run.#", "run", True), ("*.#", "run", True), ("*", "run.received", False),
             ("#.received", "received", True),
             ("#.x.#", "a.x.b", True), ("#.x.#", "a.y.b", False), ("a.*.c", "a.b.c", True), ("a.*.c", "a.c", False)]
    for pattern, topic, expected in cases:
        assert topic_matches(pattern, topic) is expected, (pattern, topic)


async def test_one_stream_with_a_pathological_pattern_does_not_starve_the_others():
    """The bus selects per subscriber while committing: one viewer's ``topics=#.#.#…`` must not
    raise there, which would skip every later subscriber (a gap in their streams)."""
    bus = InProcessBus()
    evil = bus.subscribe([".".join(["#"] * 499) + ".x"], tenant_id="acme")
    good = [bus.subscribe(["run.*"], tenant_id="acme") for _ in range(3)]
    bus.publish([_event(1)])
    for sub in good:
        batch = await sub.next_batch(timeout=1)
        assert batch is not None and [e.id for e in batch] == [1]
    assert await evil.next_batch(timeout=0.01) == []


async def test_a_stream_with_a_long_pattern_of_hashes_still_works(api):
    topics = ".".join(["#"] * 450)
    response = await api.client.get(f"{STREAM}?topics={topics.replace('#', '%23')}", headers=api.headers())
    try:
        assert response.status == 200
        assert await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5) == b"retry: 3000\n\n"
        await api.call("POST", "/api/v1/exceptions", json=exception_body())
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        assert b"event: run.received" in block
    finally:
        response.close()
