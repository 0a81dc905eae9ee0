"""The ``EventBus`` contract, run against every backend (``tests/eventbus/conftest.py``): filtered
fan-out in publish order, tenant isolation, bounded inboxes that overflow without blocking the
publisher, and close(). Tests call only protocol members, and ``drain`` after publishing, so a
backend that delivers asynchronously passes the same tests; each commit is stored where its
backend reads before it is published (``committed``), with ids that only grow, as the log's do."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from eventbus import Batch, Envelope, EventBus, Subscription, SubscriptionFilter
from tests.eventbus.conftest import committed
from tests.eventbus.sample_events import Event, events


async def collect(subscription: Subscription) -> list[Envelope]:
    """Everything a subscription yields until it ends; close() or overflow must end it."""
    return [e async for e in subscription]


async def taken(subscription: Subscription) -> list[Batch]:
    batches = await asyncio.wait_for(subscription.next_batches(), 1)
    assert batches is not None
    return batches


async def publish(bus: EventBus, *commits: Sequence[Event]) -> None:
    for commit in commits:
        await committed(bus, commit)
    await bus.drain()


async def test_the_bus_and_its_subscriptions_are_the_protocol(bus: EventBus) -> None:
    sub = bus.subscribe(["run.*"], tenant_id="acme", run_id="r1")
    assert isinstance(bus, EventBus) and isinstance(sub, Subscription)
    assert sub.filter == SubscriptionFilter("acme", ("run.*",), "r1")
    assert sub.overflowed is False
    sub.close()


async def test_a_subscriber_gets_matching_topics_in_publish_order(bus: EventBus) -> None:
    sub = bus.subscribe(["run.*", "playbook.#"], tenant_id="acme")
    await publish(bus, [
        Event(1, "acme", "r1", "run.received"),
        Event(2, "acme", "r1", "triage.completed"),
        Event(3, "acme", "r1", "playbook.step_completed"),
        Event(4, "acme", "r1", "run.paused"),
    ])
    sub.close()
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1, 3, 4]


async def test_every_subscriber_receives_what_its_filter_wants_in_commit_order(bus: EventBus) -> None:
    topics = ("run.received", "triage.completed", "playbook.step_completed", "run.paused", "playbook.a.completed")
    commits = [
        [Event(i, ("acme", "globex")[i % 2], f"r{i % 3}", topics[i % len(topics)]) for i in range(start, start + size)]
        for start, size in ((1, 1), (2, 7), (9, 3), (12, 1), (13, 12), (25, 2))
    ]
    filters = [
        SubscriptionFilter("acme"),
        SubscriptionFilter("acme", ("run.*",)),
        SubscriptionFilter("acme", ("#.completed",), "r1"),
        SubscriptionFilter("globex", ("playbook.#", "run.paused")),
        SubscriptionFilter("globex", ("#",), "r2"),
    ]
    subs = [bus.subscribe(f.patterns, tenant_id=f.tenant_id, run_id=f.run_id, maxsize=100) for f in filters]
    await publish(bus, *commits)
    published = [e for commit in commits for e in commit]
    for wanted, sub in zip(filters, subs, strict=True):
        sub.close()
        received = await asyncio.wait_for(collect(sub), 1)
        assert [e.id for e in received] == [e.id for e in published if wanted.wants(e)], wanted
        assert received, wanted  # every filter above wants something: the check is not vacuous


async def test_tenant_and_run_filters_keep_other_events_out(bus: EventBus) -> None:
    by_tenant = bus.subscribe(tenant_id="acme")
    by_run = bus.subscribe(tenant_id="acme", run_id="r2")
    other = bus.subscribe(tenant_id="globex")
    await publish(bus, [
        Event(1, "acme", "r1", "run.received"),
        Event(2, "globex", "r2", "run.received"),
        Event(3, "acme", "r2", "run.received"),
    ])
    for sub in (by_tenant, by_run, other):
        sub.close()
    assert [e.id for e in await asyncio.wait_for(collect(by_tenant), 1)] == [1, 3]
    assert [e.id for e in await asyncio.wait_for(collect(by_run), 1)] == [3]
    assert [e.id for e in await asyncio.wait_for(collect(other), 1)] == [2]


async def test_a_subscription_names_its_tenant_a_pattern_and_room_for_an_event(bus: EventBus) -> None:
    with pytest.raises(TypeError):
        bus.subscribe(["#"])  # type: ignore[call-arg]  # the call without a tenant that must fail
    with pytest.raises(ValueError):
        bus.subscribe(["#"], tenant_id="")
    with pytest.raises(ValueError):
        bus.subscribe([], tenant_id="acme")
    with pytest.raises(ValueError):
        bus.subscribe(["#"], tenant_id="acme", maxsize=0)
    assert bus.subscriber_count == 0


async def test_a_slow_subscriber_overflows_without_holding_back_the_others(bus: EventBus) -> None:
    slow = bus.subscribe(tenant_id="acme", maxsize=3)
    healthy = bus.subscribe(tenant_id="acme", maxsize=100)
    await publish(bus, *([event] for event in events(10)))  # nobody reads while publishing: it must never wait
    assert slow.overflowed is True
    assert healthy.overflowed is False
    # the slow inbox hands back what it kept, then ends so the reader falls back to the log
    assert [e.id for e in await asyncio.wait_for(collect(slow), 1)] == [1, 2, 3]
    healthy.close()
    assert [e.id for e in await asyncio.wait_for(collect(healthy), 1)] == list(range(1, 11))


async def test_an_overflowed_subscriber_receives_nothing_more(bus: EventBus) -> None:
    sub = bus.subscribe(tenant_id="acme", maxsize=1)
    await publish(
        bus, events(1), [Event(2, "acme", "r1", "triage.completed")], [Event(99, "acme", "r1", "run.completed")],
    )
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1]


async def test_a_commit_larger_than_the_bound_is_taken_whole_by_an_empty_inbox(bus: EventBus) -> None:
    sub = bus.subscribe(tenant_id="acme", maxsize=2)
    await publish(bus, events(5))  # one group commit: a reader that keeps up must not overflow on it
    assert not sub.overflowed
    assert [e.id for e in await asyncio.wait_for(sub.next_batch(), 1) or ()] == [1, 2, 3, 4, 5]
    more = [Event(i, "acme", "r1", "run.received") for i in range(6, 11)]
    await publish(bus, more, [Event(11, "acme", "r1", "run.completed")])  # now the inbox held events: overflow
    assert sub.overflowed


async def test_close_removes_the_subscriber_and_ends_its_iteration(bus: EventBus) -> None:
    sub = bus.subscribe(tenant_id="acme")
    other = bus.subscribe(tenant_id="acme")
    assert bus.subscriber_count == 2
    reader = asyncio.create_task(collect(sub))
    await publish(bus, events(1))
    await asyncio.sleep(0)  # let the reader take the first event (no wall-clock wait)
    sub.close()
    sub.close()  # closing twice is harmless
    await publish(bus, [Event(2, "acme", "r1", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(reader, 1)] == [1]
    assert bus.subscriber_count == 1
    other.close()
    assert bus.subscriber_count == 0
    assert [e.id for e in await asyncio.wait_for(collect(other), 1)] == [1, 2]


async def test_a_full_but_not_overflowed_inbox_can_still_be_closed(bus: EventBus) -> None:
    sub = bus.subscribe(tenant_id="acme", maxsize=2)
    await publish(bus, events(2))
    sub.close()
    assert sub.overflowed is False
    assert [e.id for e in await asyncio.wait_for(collect(sub), 1)] == [1, 2]


async def test_next_batch_takes_everything_waiting_times_out_empty_and_ends_with_none(bus: EventBus) -> None:
    sub = bus.subscribe(["run.*"], tenant_id="acme", maxsize=10)
    assert await asyncio.wait_for(sub.next_batch(timeout=0.01), 1) == []
    await publish(bus, events(2), [Event(3, "acme", "r1", "triage.completed"), Event(4, "acme", "r2", "run.completed")])
    assert [e.id for e in await asyncio.wait_for(sub.next_batch(), 1) or ()] == [1, 2, 4]
    waiting = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    await publish(bus, [Event(5, "acme", "r1", "run.paused")])
    assert [e.id for e in await asyncio.wait_for(waiting, 1) or ()] == [5]
    sub.close()
    assert await asyncio.wait_for(sub.next_batch(), 1) is None


async def test_an_overflowing_subscriber_leaves_the_bus_at_once(bus: EventBus) -> None:
    slow = bus.subscribe(tenant_id="acme", maxsize=2)
    bus.subscribe(tenant_id="acme", maxsize=100)
    # past the bound: keep what fits
    await publish(bus, events(1), [Event(i, "acme", "r2", "run.received") for i in (2, 3, 4)])
    assert slow.overflowed and bus.subscriber_count == 1
    assert [e.id for e in await asyncio.wait_for(slow.next_batch(), 1) or ()] == [1, 2]
    assert await asyncio.wait_for(slow.next_batch(), 1) is None


async def test_a_held_inbox_queues_without_waking_its_reader_until_released_or_poked(bus: EventBus) -> None:
    sub = bus.subscribe(tenant_id="acme")
    sub.hold()
    reader = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    await publish(bus, events(2))
    await asyncio.sleep(0.01)
    assert not reader.done()  # held: the publish did not wake it
    sub.release()
    assert [e.id for e in await asyncio.wait_for(reader, 1) or ()] == [1, 2]
    poked = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    sub.poke()
    assert await asyncio.wait_for(poked, 1) == []  # woken with nothing queued
    sub.hold()
    closing = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    sub.close()  # ending wakes a held reader too
    assert await asyncio.wait_for(closing, 1) is None


async def test_subscribers_with_the_same_filter_share_one_selected_batch(bus: EventBus) -> None:
    """A stream formats a batch once for every stream with its filter (``Batch.memo``)."""
    first, second = (bus.subscribe(["run.*"], tenant_id="acme") for _ in range(2))
    everything = bus.subscribe(tenant_id="acme")
    await publish(bus, [Event(1, "acme", "r1", "run.received"), Event(2, "acme", "r1", "triage.completed")])
    [a], [b], [c] = [await taken(s) for s in (first, second, everything)]
    assert a is b and [e.id for e in a.events] == [1]  # selected once, for both
    assert c is not a and [e.id for e in c.events] == [1, 2]
    a.memo = b"formatted once"
    assert b.memo == b"formatted once"
