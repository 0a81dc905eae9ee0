"""Stream consumers can look up what each event holds: ``/asyncapi.json`` (public, like
``/openapi.json``) has one message per topic whose payload is the event envelope with that topic's
model, and ``/openapi.json`` describes the stream routes' answers as server-sent events whose ``data:``
holds the same schemas."""

from __future__ import annotations

from typing import Any

from domain.events import PAYLOADS
from domain.topics import Topic

STREAMS = ("/api/v1/events/stream", "/api/v1/runs/{run_id}/events/stream")


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if isinstance(node.get("$ref"), str) else [r for v in node.values() for r in refs_in(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs_in(v)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


async def test_asyncapi_documents_every_topic_on_both_streams(client):
    response = await client.get("/asyncapi.json")  # no token: public
    assert response.status == 200
    document = await response.json()
    assert document["asyncapi"] == "3.0.0"
    assert sorted(channel["address"] for channel in document["channels"].values()) == sorted(STREAMS)
    messages = document["components"]["messages"]
    assert set(messages) == {str(topic) for topic in Topic} | {"stream.overflow"}
    for topic in Topic:
        event = resolve(document, messages[topic]["payload"]["$ref"])
        assert event["properties"]["topic"]["const"] == topic
        assert event["properties"]["payload"] == {"$ref": f"#/components/schemas/{PAYLOADS[topic].__name__}"}
        assert {"id", "run_id", "seq", "actor", "request_id", "created_at"} <= set(event["required"])
    for channel in document["channels"].values():
        assert set(channel["messages"]) == set(messages)
    for operation in document["operations"].values():
        assert operation["action"] == "receive" and len(operation["messages"]) == len(messages)
    for ref in refs_in(document):
        resolve(document, ref)  # a dangling $ref raises


async def test_openapi_describes_the_stream_answers_as_their_framing_with_the_per_topic_events(client):
    """A stream's answer is ``text/event-stream``: each message an ``event:`` line naming the topic, an
    ``id:`` line, and a ``data:`` line of JSON whose schema is that topic's event."""
    document = await (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert {model.__name__ for model in PAYLOADS.values()} <= set(schemas)
    for path in STREAMS:
        operation = document["paths"][path]["get"]
        answer = operation["responses"]["200"]
        assert "/asyncapi.json" in answer["description"] and "`id:`" in answer["description"]
        assert list(answer["content"]) == ["text/event-stream"]
        options = answer["content"]["text/event-stream"]["schema"]["oneOf"]
        messages = {message["properties"]["event"]["const"]: message for message in options}
        assert set(messages) == {str(topic) for topic in Topic} | {"stream.overflow"}
        for topic in Topic:
            message = messages[topic]
            assert set(message["required"]) == {"event", "data", "id"}
            data = message["properties"]["data"]
            assert data["type"] == "string" and data["contentMediaType"] == "application/json"
            event = resolve(document, data["contentSchema"]["$ref"])
            assert event["properties"]["topic"]["const"] == topic
            assert event["properties"]["payload"]["$ref"].endswith(f"/{PAYLOADS[topic].__name__}")
        overflow = messages["stream.overflow"]["properties"]["data"]["contentSchema"]["$ref"]
        assert overflow.endswith("/StreamOverflow") and "id" not in messages["stream.overflow"]["required"]
        assert "Last-Event-ID" in [p["name"] for p in operation["parameters"] if p["in"] == "header"]


def test_playbook_events_name_the_playbook_by_id_and_version_apart():
    """Seed 002: a playbook event names its playbook by ``playbook_id`` with an integer
    ``playbook_version`` beside it, never ``id@version`` in one field."""
    named = [topic for topic in Topic if topic.startswith("playbook.")]
    assert len(named) == 9
    for topic in named:
        properties = PAYLOADS[topic].model_json_schema()["properties"]
        assert "playbook_id" in properties, topic
        version = properties["playbook_version"]
        assert "integer" in {version.get("type"), *(option.get("type") for option in version.get("anyOf", []))}, topic
