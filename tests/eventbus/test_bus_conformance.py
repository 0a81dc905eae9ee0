"""The in-process bus: filtered fan-out, bounded inboxes that overflow without blocking, close()."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

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
    sub = bus.subscribe(["run.*", "playbook.#"], tenant_id="acme")
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
    other = bus.subscribe(tenant_id="globex")
    bus.publish([
        Event(1, "acme", "r1", "run.received"),
        Event(2, "globex", "r2", "run.received"),
        Event(3, "acme", "r2", "run.received"),
    ])
    for sub in (by_tenant, by_run, other):
        sub.close()
    assert [e.id for e in await asyncio.wait_for(collect(by_tenant), 1)] == [1, 3]
    assert [e.id for e in await asyncio.wait_for(collect(by_run), 1)] == [3]
    assert [e.id for e in await asyncio.wait_for(collect(other), 1)] == [2]


def test_a_subscription_names_its_tenant() -> None:
    bus = InProcessBus()
    with pytest.raises(TypeError):
        bus.subscribe(["#"])  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        bus.subscribe(["#"], tenant_id="")
    assert bus.subscriber_count == 0


async def test_a_slow_subscriber_overflows_without_holding_back_the_others() -> None:
    bus = InProcessBus()
    slow = bus.subscribe(tenant_id="acme", maxsize=3)
    healthy = bus.subscribe(tenant_id="acme", maxsize=100)
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
    sub = bus.subscribe(tenant_id="acme", maxsize=1)
    bus.publish(events(1))
    bus.publish([Event(2, "acme", "r1", "triage.completed")])
    bus.publish([Event(99, "acme", "r1", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1]


async def test_a_commit_larger_than_the_bound_is_taken_whole_by_an_empty_inbox() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(tenant_id="acme", maxsize=2)
    bus.publish(events(5))  # one group commit: a reader that keeps up must not overflow on it
    assert not sub.overflowed
    assert [e.id for e in await asyncio.wait_for(sub.next_batch(), 1)] == [1, 2, 3, 4, 5]
    bus.publish(events(5))
    bus.publish([Event(6, "acme", "r1", "run.completed")])  # now the inbox held events: overflow
    assert sub.overflowed


async def test_close_removes_the_subscriber_and_ends_its_iteration() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(tenant_id="acme")
    other = bus.subscribe(tenant_id="acme")
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
    sub = bus.subscribe(tenant_id="acme", maxsize=2)
    bus.publish(events(2))
    sub.close()
    assert sub.overflowed is False
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1, 2]


async def test_next_batch_takes_everything_waiting_times_out_empty_and_ends_with_none() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["run.*"], tenant_id="acme", maxsize=10)
    assert await asyncio.wait_for(sub.next_batch(timeout=0.01), 1) == []
    bus.publish(events(2))
    bus.publish([Event(3, "acme", "r1", "triage.completed"), Event(4, "acme", "r2", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(sub.next_batch(), 1)] == [1, 2, 4]
    waiting = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    bus.publish([Event(5, "acme", "r1", "run.paused")])
    assert [e.id for e in await asyncio.wait_for(waiting, 1)] == [5]
    sub.close()
    assert await asyncio.wait_for(sub.next_batch(), 1) is None


async def test_an_overflowing_subscriber_leaves_the_bus_at_once() -> None:
    bus = InProcessBus()
    slow = bus.subscribe(tenant_id="acme", maxsize=2)
    bus.subscribe(tenant_id="acme", maxsize=100)
    bus.publish(events(1))
    bus.publish([Event(i, "acme", "r2", "run.received") for i in (2, 3, 4)])  # past the bound: keep what fits
    assert slow.overflowed and bus.subscriber_count == 1
    assert [e.id for e in await asyncio.wait_for(slow.next_batch(), 1)] == [1, 2]
    assert await asyncio.wait_for(slow.next_batch(), 1) is None


async def test_a_held_inbox_queues_without_waking_its_reader_until_released_or_poked() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(tenant_id="acme")
    sub.hold()
    reader = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    bus.publish(events(2))
    await asyncio.sleep(0.01)
    assert not reader.done()  # held: the publish did not wake it
    sub.release()
    assert [e.id for e in await asyncio.wait_for(reader, 1)] == [1, 2]
    poked = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    sub.poke()
    assert await asyncio.wait_for(poked, 1) == []  # woken with nothing queued
    sub.hold()
    closing = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    sub.close()  # ending wakes a held reader too
    assert await asyncio.wait_for(closing, 1) is None


async def test_subscribers_with_the_same_filter_share_one_selected_batch() -> None:
    bus = InProcessBus()
    first, second = (bus.subscribe(["run.*"], tenant_id="acme") for _ in range(2))
    everything = bus.subscribe(tenant_id="acme")
    bus.publish([Event(1, "acme", "r1", "run.received"), Event(2, "acme", "r1", "triage.completed")])
    [a], [b], [c] = [await asyncio.wait_for(s.next_batches(), 1) for s in (first, second, everything)]
    assert a is b and [e.id for e in a.events] == [1]  # selected once, for both
    assert c is not a and [e.id for e in c.events] == [1, 2]
    a.memo = b"formatted once"
    assert b.memo == b"formatted once"
