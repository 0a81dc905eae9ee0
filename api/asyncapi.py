"""``/asyncapi.json``: the live event streams as an AsyncAPI 3.0 document, so a consumer of
``GET /api/v1/events/stream`` knows what each ``data:`` holds. One message per topic, whose payload
is the ``EventOut`` envelope with that topic's payload model (``api/event_docs.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.event_docs import EVENT_MODELS, FRAMING, StreamOverflow, summary
from api.sse import OVERFLOW_TOPIC
from domain.events import PAYLOADS, PAYLOADS_VERSION

_CHANNELS = {
    "tenantEvents": (
        "/api/v1/events/stream",
        "The tenant's events as they are committed; `?topics=` patterns and `?run_id=` narrow them",
    ),
    "runEvents": ("/api/v1/runs/{run_id}/events/stream", "One run's events as they are committed"),
}


def build_asyncapi(*, title: str, version: str) -> dict[str, Any]:
    models: list[type[BaseModel]] = [*EVENT_MODELS.values(), StreamOverflow]
    refs, defs = models_json_schema([(m, "serialization") for m in models], ref_template="#/components/schemas/{model}")
    messages: dict[str, Any] = {
        str(topic): {
            "name": str(topic),
            "title": str(topic),
            "summary": summary(PAYLOADS[topic]) or f"A {topic} event",
            "contentType": "application/json",
            "payload": refs[(model, "serialization")],
        }
        for topic, model in EVENT_MODELS.items()
    }
    messages[OVERFLOW_TOPIC] = {
        "name": OVERFLOW_TOPIC,
        "title": OVERFLOW_TOPIC,
        "summary": summary(StreamOverflow),
        "description": "Not an event of the log: it has no `id:`, and it is the stream's last message.",
        "contentType": "application/json",
        "payload": refs[(StreamOverflow, "serialization")],
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for key, (address, description) in _CHANNELS.items():
        channels[key] = {
            "address": address,
            "description": f"{description}. {FRAMING}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
        }
        if "{run_id}" in address:
            channels[key]["parameters"] = {"run_id": {"description": "The run whose events to stream"}}
        operations[f"receive{key[0].upper()}{key[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"GET {address} (text/event-stream)",
            "security": [{"$ref": "#/components/securitySchemes/bearer"},
                         {"$ref": "#/components/securitySchemes/accessToken"}],
            "messages": [{"$ref": f"#/channels/{key}/messages/{name}"} for name in messages],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"{title} event streams",
            "version": version,
            "description": (
                "Every topic the service writes to a run's event log, and what its `payload` holds "
                f"(payload set version {PAYLOADS_VERSION}). The HTTP routes are in `/openapi.json`."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "accessToken": {"type": "httpApiKey", "in": "query", "name": "access_token",
                                "description": "The bearer token as `?access_token=`, for `EventSource`"},
            },
        },
    }
