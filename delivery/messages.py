"""What a webhook receiver gets: the Standard Webhooks payload shape, ``type`` (the topic),
``timestamp`` and ``data``. For an event's delivery, ``data`` is the event as the streams show it
(its global id, run, sequence number, actor, payload), with the run's dashboard link when a
public URL is configured."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from store.deliveries import Claimed


def webhook_body(claimed: Claimed, public_url: str | None, now: datetime) -> bytes:
    delivery, event = claimed.delivery, claimed.event
    if event is None:
        data: dict[str, Any] = dict(delivery.message or {})
        at = delivery.created_at
    else:
        data = {"event_id": event.id, "run_id": event.run_id, "seq": event.seq, "actor": event.actor,
                "request_id": event.request_id, "payload": event.payload}
        if public_url and event.run_id:
            data["run_url"] = f"{public_url.rstrip('/')}/#/runs/{event.run_id}"
        at = event.created_at
    return orjson.dumps({"type": delivery.topic, "timestamp": (at or now).isoformat(), "data": data})
