"""``/openapi.json`` tells what the server does: every ``$ref`` resolves, values the server refuses
are refused by the schemas (or, where a schema cannot say it, by their descriptions), and every
status a route can answer is listed. ``test_schemathesis.py`` checks the same against the running
server; these say which rules in particular must stay documented."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.app import route_specs
from api.routes_health import openapi_document
from tests.api.test_event_docs import refs_in, resolve

DOCUMENT = openapi_document(route_specs())
ROOT = "urn:autopilot:openapi"
REGISTRY: Registry = Registry().with_resource(ROOT, Resource.from_contents(DOCUMENT, DRAFT202012))


def operation(method: str, path: str) -> dict[str, Any]:
    return DOCUMENT["paths"][path][method]


def body_schema(method: str, path: str) -> dict[str, Any]:
    ref = operation(method, path)["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {"$ref": ROOT + ref}


def allows(schema: dict[str, Any], value: Any) -> bool:
    return Draft202012Validator(schema, registry=REGISTRY).is_valid(value)


def test_every_ref_in_the_document_resolves():
    refs = refs_in(DOCUMENT)
    assert len(refs) > 100
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        resolve(DOCUMENT, ref)  # a dangling $ref raises


def test_query_parameters_are_never_null_and_lists_are_comma_separated():
    statuses = next(p for p in operation("get", "/api/v1/runs")["parameters"] if p["name"] == "status")
    assert statuses["schema"]["items"] == {"$ref": "#/components/schemas/RunStatus"}
    assert (statuses["style"], statuses["explode"]) == ("form", False)
    for methods in DOCUMENT["paths"].values():
        for op in methods.values():
            for parameter in op["parameters"]:
                assert {"type": "null"} not in parameter["schema"].get("anyOf", []), parameter
                assert parameter["schema"].get("default", "absent") is not None, parameter


EXCEPTION = {"source": "stripe", "domain": "payments", "type": "payment.failed"}
INGEST = ("post", "/api/v1/exceptions")


@pytest.mark.parametrize(("body", "allowed"), [
    (EXCEPTION, True),
    ({**EXCEPTION, "amount": "42.50", "currency": "USD"}, True),
    ({**EXCEPTION, "amount": 42.5, "currency": "USD"}, True),
    ({**EXCEPTION, "amount": "", "currency": "USD"}, False),
    ({**EXCEPTION, "amount": "1.00001", "currency": "USD"}, False),
    ({**EXCEPTION, "amount": "42.50"}, False),  # an amount needs its currency
    ({**EXCEPTION, "amount": None}, True),
    ({**EXCEPTION, "source": "a\x00b"}, False),
    ({**EXCEPTION, "context": {"k\x00": 1}}, False),
    ({**EXCEPTION, "context": {"k": [{"deep": "v\x00"}]}}, False),
    ({**EXCEPTION, "context": {"k": [{"deep": "v"}]}}, True),
])
def test_the_exception_schema_refuses_what_the_server_refuses(body, allowed):
    assert allows(body_schema(*INGEST), body) is allowed


def test_the_idempotency_key_has_its_rules():
    header = next(p for p in operation(*INGEST)["parameters"] if p["name"] == "Idempotency-Key")
    for key, allowed in (("", False), ("k", True), ("retry-7f3a", True), ("k" * 255, True), ("k" * 256, False),
                         ("a\tb c", True), ("clé", True), (" k", False), ("k\x00", False), ("a\x7fb", False)):
        assert allows(header["schema"], key) is allowed, key
    assert "422" in header["description"]


@pytest.mark.parametrize(("trigger", "allowed"), [
    ({"type": "cron", "expression": "0 9 * * MON-FRI"}, True),
    ({"type": "cron", "expression": None}, False),
    ({"type": "cron"}, False),
    ({"type": "cron", "expression": "0 9 * * *", "seconds": 60}, False),
    ({"type": "interval", "seconds": 60}, True),
    ({"type": "interval", "seconds": 60, "expression": "0 9 * * *"}, False),
    ({}, False),
])
def test_a_trigger_has_the_fields_of_its_type(trigger, allowed):
    body = {"id": "nightly", "workflow": "sla_sweep", "trigger": trigger}
    assert allows(body_schema("post", "/api/v1/schedules"), body) is allowed


def test_query_texts_the_server_checks_have_their_pattern():
    topic = next(p for p in operation("get", "/api/v1/audit")["parameters"] if p["name"] == "topic")
    for value, allowed in (("run.paused", True), ("playbook.*", True), ("playbook.#", True), ("*", False),
                           ("a*.b", False)):
        assert allows(topic["schema"], value) is allowed, value
    topics = next(p for p in operation("get", "/api/v1/events/stream")["parameters"] if p["name"] == "topics")
    for value, allowed in (("run.*,playbook.#", True), ("run..x", False), (",", False), (",".join("a" * 17), False)):
        assert allows(topics["schema"], value) is allowed, value


def test_a_schedule_change_takes_null_only_to_clear_the_failure_limit():
    schema = body_schema("patch", "/api/v1/schedules/{schedule_id}")
    assert allows(schema, {"pause_after_failures": None})
    for field in ("workflow", "trigger", "payload", "description", "overlap", "catch_up_seconds", "paused"):
        assert not allows(schema, {field: None}), field


def test_a_resume_payload_names_its_decision_and_holds_no_nul():
    schema = body_schema("post", "/api/v1/workflows/{workflow_id}/runs/{run_id}/resume")
    assert allows(schema, {"payload": {"decision": "approve"}})
    assert allows(schema, {"payload": {"decision": "reject", "reason": "duplicate"}})
    refused: list[dict[str, Any]] = [{}, {"payload": {}}, {"payload": {"decision": "maybe"}},
                                     {"payload": {"decision": "approve", "note\x00": "x"}}]
    for body in refused:
        assert not allows(schema, body), body


def test_rules_a_schema_cannot_state_are_in_its_description():
    """The configuration and the run decide these; a body that fits can still be a 400 naming the field."""
    schemas = DOCUMENT["components"]["schemas"]
    backfill = schemas["BackfillRequest"]["description"]
    assert "`start` must be before `end`" in backfill and "in the future" in backfill
    assert "GET /api/v1/workflows" in schemas["ScheduleCreate"]["description"]
    assert "GET /api/v1/workflows" in schemas["SchedulePatch"]["description"]
    assert "ExceptionIn" in schemas["TriggerWorkflowRequest"]["properties"]["payload"]["description"]
    assert "payload_schema" in schemas["ResumeRunRequest"]["properties"]["payload"]["description"]
    assert "output contract" in schemas["StepCompletionPayload"]["properties"]["outputs"]["description"]


def test_every_status_a_route_can_answer_is_listed():
    for spec in route_specs():
        responses = operation(spec.method.lower(), spec.path)["responses"]
        expected = {"400", "414", "431"}
        if spec.body is not None:
            expected |= {"413", "415"}
        if spec.idempotent:
            expected.add("422")
        if "{" in spec.path:
            expected.add("404")
        assert expected <= set(responses), (spec.method, spec.path, sorted(expected - set(responses)))
    for path in ("/api/v1/copilot/ask", "/api/v1/copilot/ask/stream"):
        assert {"404", "502", "503", "504"} <= set(operation("post", path)["responses"])
    assert "409" in operation("post", "/api/v1/schedules")["responses"]
    assert "409" in operation("post", "/api/v1/workflows/{workflow_id}/runs/{run_id}/resume")["responses"]
    assert "200" in operation("get", "/openapi.json")["responses"]


def test_the_copilot_stream_is_documented_as_its_events():
    answer = operation("post", "/api/v1/copilot/ask/stream")["responses"]["200"]
    options = answer["content"]["text/event-stream"]["schema"]["oneOf"]
    events = {o["properties"]["event"]["const"]: o["properties"]["data"]["contentSchema"]["$ref"] for o in options}
    assert events == {"tool_call": "#/components/schemas/CopilotToolCall",
                      "answer": "#/components/schemas/CopilotResponse",
                      "error": "#/components/schemas/CopilotStreamError"}
