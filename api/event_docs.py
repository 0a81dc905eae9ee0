"""The events a stream sends, as documented models: for every topic, the ``EventOut`` envelope with
``topic`` fixed and ``payload`` that topic's model (``domain.events``). ``/asyncapi.json`` is built
from these, and ``/openapi.json`` describes the stream routes' ``text/event-stream`` answers as their
framing: each message's ``event:`` and ``id:`` lines and the model of the JSON its ``data:`` line holds."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

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


class SseMessages(BaseModel):
    """Declared as a ``text/event-stream`` route's 200 answer (never sent as such): its framing in
    words, and for each ``event:`` name the model of the JSON its ``data:`` line holds."""

    framing: ClassVar[str]
    events: ClassVar[dict[str, type[BaseModel]]]
    with_ids: ClassVar[frozenset[str]] = frozenset()
    """The events that carry an ``id:`` line."""


class RunEventMessages(SseMessages):
    """The events of the log as they are committed, each with its id."""

    framing = f"{FRAMING} Each topic's message, as AsyncAPI: `/asyncapi.json`."
    events = {**{str(topic): model for topic, model in EVENT_MODELS.items()}, OVERFLOW_TOPIC: StreamOverflow}
    with_ids = frozenset(str(topic) for topic in EVENT_MODELS)


def sse_message_schema(messages: type[SseMessages], refs: dict[type[BaseModel], dict[str, str]]) -> dict[str, Any]:
    """One message of the stream as its framing parses (``event``, ``data``, ``id``; comment lines
    and a lone ``retry:`` carry no message): ``event`` names it and ``data`` is JSON text of its
    model (``refs``: each model's ``$ref``). This is how OpenAPI 3.2's ``itemSchema`` describes an
    event stream and how 3.1 tools that read streams (schemathesis) take ``schema``."""
    options = []
    for name, model in messages.events.items():
        properties: dict[str, Any] = {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": refs[model]},
        }
        required = ["event", "data"]
        if name in messages.with_ids:
            properties["id"] = {"type": "string", "pattern": "^[0-9]{1,19}$",
                                "description": "The event's id: send it back as Last-Event-ID to resume after it"}
            required.append("id")
        options.append({"type": "object", "title": name, "properties": properties, "required": required})
    return {
        "type": "object",
        "description": messages.framing,
        "properties": {"retry": {"type": "integer", "minimum": 0, "description": "How long to wait before "
                                 "reconnecting, in milliseconds"}},
        "oneOf": options,
    }


def event_stream_response(messages: type[SseMessages], refs: dict[type[BaseModel], dict[str, str]]) -> dict[str, Any]:
    """The OpenAPI answer of a stream route: ``text/event-stream``, described message by message."""
    names = ", ".join(f"`{name}` ({model.__name__})" for name, model in messages.events.items())
    return {
        "description": f"{messages.framing} Events (`event:` name, and the model of `data:`): {names}.",
        "content": {EVENT_STREAM: {"schema": sse_message_schema(messages, refs)}},
    }
