"""The deliveries a commit's events owe, written in the same transaction as the events (the
outbox): a crash can neither lose a delivery of a committed event nor leave one for an event
that never committed.

The subscriptions are read inside that transaction, so every process sees the same ones. One
indexed read per group commit, of the batch's tenants' enabled endpoints; each event's topic is
matched against their patterns with the streams' own matcher (``eventbus.topics``). A
delivery's message is not copied here: it is built from the event when it is sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from domain.ids import IdFactory
from eventbus.topics import topic_matches
from store.records import QueuedNotification
from store.tables import webhook_endpoints

_ids = IdFactory()
CHANNEL_PREFIX = "channel:"
"""A notify step's delivery names its channel (``config/channels.yaml``) where an event's names
its endpoint: ``endpoint_id`` is ``channel:<id>``."""


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class OutboxPolicy:
    """How the group commit writes deliveries: for how long they are retried, and whom to tell
    (after the commit, in the event loop) that a commit wrote some: the delivery worker."""

    give_up_after: timedelta = timedelta(hours=24)
    on_written: Callable[[], None] = _nothing
    declared: Mapping[str, Sequence[tuple[str, Sequence[str]]]] = field(default_factory=dict)
    """Per tenant, the channels of ``config/channels.yaml`` that subscribe to topics: (channel id,
    patterns). Configuration, the same in every process, so it is not read from the database."""


DEFAULT_OUTBOX = OutboxPolicy()


def outbox_rows(
    conn: Connection, events: Sequence[tuple[int, str, str, str]], now: datetime, policy: OutboxPolicy,
) -> list[dict[str, Any]]:
    """Delivery rows for ``events`` given as (event id, tenant, run id, topic), due at ``now``:
    for the tenant's enabled endpoints, and its channels that subscribe (``policy.declared``)."""
    tenants = {tenant for _, tenant, _, _ in events}
    query = (select(webhook_endpoints.c.tenant_id, webhook_endpoints.c.id, webhook_endpoints.c.topics)
             .where(webhook_endpoints.c.tenant_id.in_(tenants), webhook_endpoints.c.enabled.is_(True)))
    subscribed: dict[str, list[tuple[str, Sequence[str]]]] = {}
    for tenant in tenants & policy.declared.keys():
        subscribed[tenant] = [(CHANNEL_PREFIX + channel, patterns) for channel, patterns in policy.declared[tenant]]
    for tenant, endpoint_id, topics in conn.execute(query):
        subscribed.setdefault(tenant, []).append((endpoint_id, topics))
    if not subscribed:
        return []
    rows = []
    for event_id, tenant, run_id, topic in events:
        for endpoint_id, patterns in subscribed.get(tenant, ()):
            if any(topic_matches(pattern, topic) for pattern in patterns):
                rows.append(pending_row(_ids("dlv"), tenant, endpoint_id, topic, now, policy.give_up_after,
                                        event_id=event_id, run_id=run_id))
    return rows


def notification_row(note: QueuedNotification, give_up_after: timedelta) -> dict[str, Any]:
    """A notify step's delivery: due at once, or dead at once when it cannot be sent as things
    are (it then costs the worker nothing; redelivering it tries again)."""
    row = pending_row(note.id, note.tenant_id, CHANNEL_PREFIX + note.channel, "notification", note.created_at,
                      give_up_after, run_id=note.run_id, message=note.message)
    if note.refused:
        row.update(status="dead", next_attempt_at=None, last_error=f"refused: {note.refused}"[:500])
    return row


def pending_row(delivery_id: str, tenant: str, endpoint_id: str, topic: str, now: datetime,
                give_up_after: timedelta, *, event_id: int | None = None, run_id: str | None = None,
                message: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new delivery, due at once."""
    return {
        "id": delivery_id, "tenant_id": tenant, "endpoint_id": endpoint_id, "event_id": event_id,
        "run_id": run_id, "topic": topic, "message": message, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "give_up_at": now + give_up_after, "claimed_by": None, "claimed_until": None,
        "last_status_code": None, "last_error": None, "created_at": now, "updated_at": now, "delivered_at": None,
    }
