"""The in-process bus: filtered fan-out, bounded inboxes that overflow without blocking, close()."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from eventbus import InProcessBus


@dataclass(frozen=True)
class Event:
    id: int
    tenant_id: str
    run_id: str
    topic: str


def events(n: int, topic: str = "run.received", tenant: str = "acme", run: str = "r1") -> list[Event]:
    return [Event(i, tenant, run, topic) for i in range(1, n + 1)]


async def collect(subscription) -> list[Event]:  # type: ignore[no-untyped-def]
    """Everything a subscription yields until it ends; close() or overflow must end it."""
    return [e async for e in subscription]


async def test_a_subscriber_gets_matching_topics_in_publish_order() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["run.*", "playbook.#"])
    published = [
        Event(1, "acme", "r1", "run.received"),
        Event(2, "acme", "r1", "triage.completed"),
        Event(3, "acme", "r1", "playbook.step_completed"),
        Event(4, "acme", "r1", "run.paused"),
    ]
    bus.publish(published)
    sub.close()
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1, 3, 4]


async def test_tenant_and_run_filters_keep_other_events_out() -> None:
    bus = InProcessBus()
    by_tenant = bus.subscribe(tenant_id="acme")
    by_run = bus.subscribe(tenant_id="acme", run_id="r2")
    bus.publish([
        Event(1, "acme", "r1", "run.received"),
        Event(2, "globex", "r2", "run.received"),
        Event(3, "acme", "r2", "run.received"),
    ])
    by_tenant.close()
    by_run.close()
    assert [e.id for e in await asyncio.wait_for(collect(by_tenant), 1)] == [1, 3]
    assert [e.id for e in await asyncio.wait_for(collect(by_run), 1)] == [3]


async def test_a_slow_subscriber_overflows_without_holding_back_the_others() -> None:
    bus = InProcessBus()
    slow = bus.subscribe(maxsize=3)
    healthy = bus.subscribe(maxsize=100)
    for event in events(10):  # nobody reads while publishing: publish must never wait
        bus.publish([event])
    assert slow.overflowed is True
    assert healthy.overflowed is False
    # the slow inbox hands back what it kept, then ends so the reader falls back to the log
    assert [e.id for e in await asyncio.wait_for(collect(slow), 1)] == [1, 2, 3]
    healthy.close()
    assert [e.id for e in await asyncio.wait_for(collect(healthy), 1)] == list(range(1, 11))


async def test_an_overflowed_subscriber_receives_nothing_more() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(maxsize=1)
    bus.publish(events(2))
    bus.publish([Event(99, "acme", "r1", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1]


async def test_close_removes_the_subscriber_and_ends_its_iteration() -> None:
    bus = InProcessBus()
    sub = bus.subscribe()
    other = bus.subscribe()
    assert bus.subscriber_count == 2
    reader = asyncio.create_task(collect(sub))
    bus.publish(events(1))
    await asyncio.sleep(0)  # let the reader take the first event (no wall-clock wait)
    sub.close()
    sub.close()  # closing twice is harmless
    bus.publish([Event(2, "acme", "r1", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(reader, 1)] == [1]
    assert bus.subscriber_count == 1
    other.close()
    assert bus.subscriber_count == 0
    assert [e.id for e in await asyncio.wait_for(collect(other), 1)] == [1, 2]


async def test_a_full_but_not_overflowed_inbox_can_still_be_closed() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(maxsize=2)
    bus.publish(events(2))
    sub.close()
    assert sub.overflowed is False
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1, 2]
