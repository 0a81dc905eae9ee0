"""``/openapi.json``: generated from the route table and its pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.event_docs import EVENT_MODELS, event_stream_response
from api.routing import RouteSpec
from api.schemas import ErrorEnvelope
from api.sse import EVENT_STREAM

_ERRORS = {
    400: "Invalid input; details name each field",
    404: "Not found in the caller's tenant",
    409: "The run is not in a state that allows this",
    422: "Idempotency-Key reused with a different body",
}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _errors_of(spec: RouteSpec) -> dict[int, str]:
    """The error answers a route documents; a protected one (every route that names a permission)
    can also refuse the caller's token (401) or roles (403)."""
    documented = dict(_ERRORS)
    if spec.permission is not None:
        documented[401] = "Missing or invalid bearer token"
        documented[403] = f"The caller's roles do not grant the '{spec.permission}' permission"
    return dict(sorted(documented.items()))


def build_openapi(specs: list[RouteSpec], *, title: str, version: str) -> dict[str, Any]:
    answers: set[type[BaseModel]] = {ErrorEnvelope}
    bodies: set[type[BaseModel]] = set()
    for spec in specs:
        answers.update(m for m in spec.responses.values() if m is not None)
        if spec.errors:
            answers.add(spec.errors.model)
        if spec.body:
            bodies.add(spec.body)
    answers.update(EVENT_MODELS.values())  # what the event streams send, one model per topic
    key_map, defs = models_json_schema(
        [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)]
        + [(m, "validation") for m in sorted(bodies, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    components = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return key_map[(model, mode)]

    event_refs = {topic: ref(model, "serialization") for topic, model in EVENT_MODELS.items()}
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.handler.__name__,
            "tags": [spec.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", spec.path)
            ],
            "responses": {
                str(status): {
                    "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else model.__name__,
                    "content": {
                        (spec.media_type if status < 300 else "application/json"): {
                            "schema": ref(model, "serialization")
                        }
                    },
                } if model is not None else {"description": "No content"}
                for status, model in spec.responses.items()
            },
        }
        if spec.media_type == EVENT_STREAM:
            operation["responses"]["200"] = event_stream_response(event_refs)
        if spec.query:
            operation["parameters"] += _query_parameters(spec.query)
        if spec.idempotent:
            operation["parameters"].append({
                "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "A retry with the same key gets the first answer and starts nothing new",
            })
        if spec.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body, "validation")}},
            }
        error_model = spec.errors.model if spec.errors else ErrorEnvelope
        error_ref = {"content": {"application/json": {"schema": ref(error_model, "serialization")}}}
        for status, text in _errors_of(spec).items():
            operation["responses"].setdefault(str(status), {"description": text, **error_ref})
        if not spec.public:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
