"""The events a stream sends, as documented models: for every topic, the ``EventOut`` envelope with
``topic`` fixed and ``payload`` that topic's model (``domain.events``). ``/asyncapi.json`` is built
from these, and ``/openapi.json`` describes the stream routes' ``text/event-stream`` answers with them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from api.schemas import EventOut
from api.sse import EVENT_STREAM, OVERFLOW_TOPIC
from domain.events import PAYLOADS
from domain.topics import Topic

FRAMING = (
    "Server-sent events: each message is `id:` the event's id (send it back as `Last-Event-ID` to resume), "
    "`event:` its topic and `data:` the event as one line of JSON, exactly as `GET /api/v1/runs/{run_id}/events` "
    "lists it; `payload` depends on `topic`. Comment lines (`: heartbeat`) keep the connection alive. "
    f"A stream that falls too far behind ends with one `{OVERFLOW_TOPIC}` message."
)


def summary(model: type[BaseModel]) -> str | None:
    """The first line of a model's docstring, if it has one of its own."""
    doc = model.__dict__.get("__doc__")
    return doc.strip().splitlines()[0] if doc and doc.strip() else None


def _event_model(topic: Topic, payload: type[BaseModel]) -> type[EventOut]:
    topic_type: Any = Literal[topic.value]  # built at run time, one per topic: no static type to give it
    return create_model(
        f"{payload.__name__}Event",
        __base__=EventOut,
        __doc__=f"A `{topic}` event. {summary(payload) or ''}".strip(),
        topic=(topic_type, Field(description="What happened; fixes the shape of `payload`")),
        payload=(payload, ...),
    )


EVENT_MODELS: dict[Topic, type[EventOut]] = {topic: _event_model(topic, model) for topic, model in PAYLOADS.items()}
"""Every topic's event as a stream sends it."""


class StreamOverflow(BaseModel):
    """The stream fell too far behind and ends; reconnect with `Last-Event-ID` to resume from the log."""

    reason: str
    last_event_id: int | None = Field(description="The last event id sent before the stream ended")


def event_stream_response(event_refs: dict[Topic, dict[str, str]]) -> dict[str, Any]:
    """The OpenAPI answer of a stream route: one of the per-topic events (``event_refs``: their ``$ref``s),
    told apart by ``topic``."""
    return {
        "description": f"{FRAMING} Each topic's message: `/asyncapi.json`.",
        "content": {EVENT_STREAM: {"schema": {
            "oneOf": list(event_refs.values()),
            "discriminator": {"propertyName": "topic", "mapping": {str(t): r["$ref"] for t, r in event_refs.items()}},
        }}},
    }
