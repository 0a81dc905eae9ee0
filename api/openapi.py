"""``/openapi.json``: generated from the route table and its pydantic models, and telling what the
server enforces: request schemas as the strict reader takes them (``api/openapi_inputs.py``), every
status a route can answer, and the event streams as their framing (``api/event_docs.py``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.event_docs import SseMessages, event_stream_response
from api.json_limits import MAX_JSON_DEPTH
from api.openapi_inputs import JSON_VALUE, NUL_FREE, InputSchema, json_value_schema, query_parameter_schema
from api.request_guard import MAX_HEADER_LINE, MAX_REQUEST_LINE
from api.routing import MAX_BODY_BYTES, RouteSpec
from api.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"
IDEMPOTENCY_KEY = r"^[^\x00-\x20\x7f]([^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?$"
"""Text without control characters (tabs and spaces inside it are fine; HTTP drops them at either end)."""

STATUS_TEXT = {
    400: "Invalid input; `details` name each field, parameter or header at fault",
    401: "Missing or invalid bearer token",
    404: "Not found in the caller's tenant",
    409: "The resource is not in a state that allows this (or changed meanwhile); look again",
    413: f"The body is over {MAX_BODY_BYTES} bytes",
    414: f"The request line is over {MAX_REQUEST_LINE} bytes",
    415: "The body is not sent as `application/json` (UTF-8)",
    422: "This Idempotency-Key was used for a different request",
    431: f"A header line is over {MAX_HEADER_LINE} bytes",
    502: "The model endpoint failed or answered something unusable",
    503: "Not available: not configured, or a dependency is down",
    504: "The model endpoint did not answer in time",
}

API_DESCRIPTION = (
    "Every error answers with the error envelope (`ErrorEnvelope`): a stable `code`, a `message` and `details`. "
    "On every route: bytes that are not UTF-8, or NUL (U+0000), in the path, the query or a header are a 400 naming "
    f"where; a request line over {MAX_REQUEST_LINE} bytes is a 414 and a header line over {MAX_HEADER_LINE} bytes a "
    "431; a method a path does not take is a 405 whose `Allow` header lists those it does. Bodies are JSON objects "
    "sent as `application/json` (else 415), read strictly: JSON's own types only (`\"12\"` is not an integer, "
    "`1` not a boolean), times as RFC 3339 strings with an offset, no NUL in any string or key, objects and "
    f"arrays nested at most {MAX_JSON_DEPTH} levels deep, and at most {MAX_BODY_BYTES} bytes (413)."
)


def _status_text(spec: RouteSpec, status: int) -> str:
    if status == 403:
        return f"The caller's roles do not grant the '{spec.permission}' permission, or the resource's own rules " \
               "refuse this caller"
    return STATUS_TEXT.get(status, "Error")


def _path_names(spec: RouteSpec) -> list[str]:
    return re.findall(r"{(\w+)}", spec.path)


def _errors_of(spec: RouteSpec) -> list[int]:
    """The error answers any route of its kind can give: 400 and the request-size limits everywhere,
    401 and 403 when it names a permission, 404 when its path names something, 413 and 415 when it
    reads a body, 422 when it takes an Idempotency-Key. A route declares its other errors itself."""
    statuses = {400, 414, 431}
    if spec.permission is not None:
        statuses |= {401, 403}
    if _path_names(spec):
        statuses.add(404)
    if spec.body is not None:
        statuses |= {413, 415}
    if spec.idempotent:
        statuses.add(422)
    return sorted(statuses)


def _streams(spec: RouteSpec) -> list[type[SseMessages]]:
    return [m for m in spec.responses.values() if isinstance(m, type) and issubclass(m, SseMessages)]


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema, "description": description}


IDEMPOTENCY_HEADER = _header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY},
    "1 to 255 characters, unique per request within the tenant. A retry with the same key and the same request "
    "gets the first answer (with `Idempotent-Replayed: true`) and starts nothing new; the same key with a "
    "different request is a 422. Only successful answers are kept, so a retry after an error runs again. "
    "Text beyond ASCII must be sent as UTF-8: other bytes are a 400.",
)
LAST_EVENT_ID_HEADER = _header(
    "Last-Event-ID",
    {"type": "string", "pattern": "^[0-9]{1,19}$"},
    "An event id this stream sent (at most 2^63-1): replay the log after it first. Takes precedence over "
    "`?last_event_id=`; an EventSource sends it on reconnecting.",
)


def _responses(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, str]]) -> dict[str, Any]:
    """Every status ``spec`` can answer: those it declares, then those of its kind (``_errors_of``)."""
    error_ref = refs[spec.errors.model if spec.errors else ErrorEnvelope]

    def error_answer(status: int) -> dict[str, Any]:
        return {"description": _status_text(spec, status), "content": {"application/json": {"schema": error_ref}}}

    responses: dict[str, Any] = {}
    for status, model in spec.responses.items():
        if model is None:
            responses[str(status)] = {"description": "No content"}
        elif issubclass(model, SseMessages):
            responses[str(status)] = event_stream_response(model, refs)
        elif issubclass(model, ErrorEnvelope):
            responses[str(status)] = error_answer(status)
        else:
            responses[str(status)] = {
                "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else model.__name__,
                "content": {spec.media_type if status < 300 else "application/json": {"schema": refs[model]}},
            }
    for status in _errors_of(spec):
        responses.setdefault(str(status), error_answer(status))
    return dict(sorted(responses.items()))


def build_openapi(specs: list[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    answers: set[type[BaseModel]] = {ErrorEnvelope}
    inputs: set[type[BaseModel]] = set()
    for spec in specs:
        for model in spec.responses.values():
            if model is not None and model not in _streams(spec):
                answers.add(model)
        for stream in _streams(spec):
            answers.update(stream.events.values())
        if spec.errors:
            answers.add(spec.errors.model)
        inputs.update(m for m in (spec.body, spec.query) if m is not None)
    key_map, defs = models_json_schema(
        [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)]
        + [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)],
        ref_template=REF, schema_generator=InputSchema,
    )
    components = defs.get("$defs", {})
    components[JSON_VALUE] = json_value_schema(REF.format(model=JSON_VALUE))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return key_map[(model, mode)]

    def component(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return components[ref(model, mode)["$ref"].rsplit("/", 1)[-1]]

    answer_refs = {model: ref(model, "serialization") for model in answers}
    queries = {spec.query for spec in specs if spec.query is not None}
    query_schemas = {model: component(model, "validation") for model in queries}
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.handler.__name__,
            "tags": [spec.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True,
                 "schema": {"type": "string", "minLength": 1, "pattern": NUL_FREE}}
                for name in _path_names(spec)
            ],
            "responses": _responses(spec, answer_refs),
        }
        if spec.query:
            operation["parameters"] += _query_parameters(query_schemas[spec.query])
        if spec.idempotent:
            operation["parameters"].append(IDEMPOTENCY_HEADER)
        if any(stream.with_ids for stream in _streams(spec)):
            operation["parameters"].append(LAST_EVENT_ID_HEADER)
        if spec.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body, "validation")}},
            }
        if not spec.public:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    _link(paths, components)
    for model in queries:  # inlined as parameters; nothing refers to them
        del components[ref(model, "validation")["$ref"].rsplit("/", 1)[-1]]
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": API_DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields as parameters; an array is one comma-separated value (``?status=a,b``)."""
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": query_parameter_schema(prop)}
        if "description" in prop:
            parameter["description"] = prop["description"]
        if parameter["schema"].get("type") == "array":
            parameter.update(style="form", explode=False)
        parameters.append(parameter)
    return parameters


def _link(paths: dict[str, dict[str, Any]], components: dict[str, Any]) -> None:
    """OpenAPI links from each success answer to the operations whose path it names in full: an
    answer with ``run_id`` and ``workflow_id`` leads to ``resume_run``, ``run_id`` alone to the run's
    pages. Clients (and schemathesis's stateful phase) follow them from one call to the next."""
    operations = [op for methods in paths.values() for op in methods.values()]
    for operation in operations:
        for status, answer in operation["responses"].items():
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if not status.startswith("2") or "$ref" not in schema:
                continue
            fields = set(components[schema["$ref"].rsplit("/", 1)[-1]].get("properties", {}))
            links = {}
            for target in operations:
                names = [p["name"] for p in target["parameters"] if p["in"] == "path"]
                if target is not operation and names and set(names) <= fields:
                    links[target["operationId"]] = {
                        "operationId": target["operationId"],
                        "parameters": {name: f"$response.body#/{name}" for name in names},
                    }
            if links:
                answer["links"] = links
