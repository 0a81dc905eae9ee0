"""The JSON Schema of what a request may send, as the server reads it rather than as pydantic alone
would: bodies are read in strict JSON mode, no string or key anywhere may hold NUL, free-form JSON
nests at most ``MAX_JSON_DEPTH`` levels, and some models have rules across their fields. The
schemas of answers are left as pydantic writes them."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from agents.exception_input import ExceptionIn
from api.json_limits import MAX_JSON_DEPTH
from config.schedules import TriggerSpec

NUL_FREE = r"^[^\x00]*$"
"""Text without NUL: refused in any body string or key, path, query or header (no store keeps it)."""
JSON_VALUE = "JsonValue"
"""The component that free-form JSON (``context``, ``payload``, ``outputs``) refers to."""
DECIMAL_TEXT = r"^0*[0-9]{1,14}(\.[0-9]{1,4}0*)?$"


def json_value_schema(ref: str) -> dict[str, Any]:
    """Any JSON value whose strings and keys hold no NUL, itself referred to as ``ref``."""
    return {
        "description": f"Any JSON value; no string or key may contain NUL (U+0000), and objects and arrays nest at "
                       f"most {MAX_JSON_DEPTH} levels deep counting the request body as the first",
        "anyOf": [
            {"type": "null"}, {"type": "boolean"}, {"type": "number"},
            {"type": "string", "pattern": NUL_FREE},
            {"type": "array", "items": {"$ref": ref}},
            {"type": "object", "propertyNames": {"pattern": NUL_FREE}, "additionalProperties": {"$ref": ref}},
        ],
    }


CROSS_FIELD_RULES: dict[type, dict[str, Any]] = {
    ExceptionIn: {
        "description": "An amount needs its currency: `currency` is required when `amount` is given and not null.",
        "if": {"required": ["amount"], "properties": {"amount": {"not": {"type": "null"}}}},
        "then": {"required": ["currency"], "properties": {"currency": {"type": "string"}}},
    },
    TriggerSpec: {
        "description": "A `cron` trigger has an `expression` (five fields: minute hour day-of-month month "
                       "day-of-week, as crontab reads them, ranges low to high) and no `seconds`; an `interval` "
                       "trigger has `seconds` and no `expression`.",
        "oneOf": [
            {"properties": {"type": {"const": "cron"}, "expression": {"type": "string"},
                            "seconds": {"type": "null"}}, "required": ["type", "expression"]},
            {"properties": {"type": {"const": "interval"}, "seconds": {"type": "number"},
                            "expression": {"type": "null"}}, "required": ["type", "seconds"]},
        ],
    },
}
"""Rules between fields of models this layer does not own, as JSON Schema where it can say them."""


class InputSchema(GenerateJsonSchema):
    """pydantic's schema generator, telling in ``validation`` mode what the request reader refuses
    beyond the models (``api/routing.py``, ``api/json_limits.py``, ``api/request_guard.py``)."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if self.mode == "validation" and "pattern" not in json_schema:
            json_schema["pattern"] = NUL_FREE
        return json_schema

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """A JSON number, or its digits as a string; within ``max_digits`` and ``decimal_places``."""
        json_schema = super().decimal_schema(schema)
        if self.mode != "validation":
            return json_schema
        places, digits = schema.get("decimal_places"), schema.get("max_digits")
        number: dict[str, Any] = {"type": "number"}
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            for option in json_schema.get("anyOf", [json_schema]):
                if key in option:
                    number[key] = option[key]
        if places is not None:
            number["multipleOf"] = 10 ** -places
        if digits is not None and places is not None and "maximum" not in number:
            number["exclusiveMaximum"] = 10 ** (digits - places)
        text = {"type": "string", "pattern": DECIMAL_TEXT if (places, digits) == (4, 18) else r"^[0-9]+(\.[0-9]+)?$"}
        described = f"A decimal: a JSON number or its digits as a string ({digits} digits at most, {places} after " \
                    "the point)" if digits is not None and places is not None else "A decimal: a number or its digits"
        return {"anyOf": [number, text], "description": described}

    def any_schema(self, schema: core_schema.AnySchema) -> JsonSchemaValue:
        if self.mode != "validation":
            return super().any_schema(schema)
        return {"$ref": self.ref_template.format(model=JSON_VALUE)}

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """Keys without NUL, said once as ``propertyNames`` (pydantic would write ``patternProperties``)."""
        json_schema = super().dict_schema(schema)
        if self.mode == "validation":
            values = json_schema.pop("patternProperties", {}).pop(NUL_FREE, None)
            if values is not None:
                json_schema["additionalProperties"] = values
            json_schema["propertyNames"] = {"pattern": NUL_FREE}
        return json_schema

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        rule = CROSS_FIELD_RULES.get(schema["cls"])
        if self.mode == "validation" and rule is not None:
            told = json_schema.get("description", "")
            json_schema.update({k: v for k, v in rule.items() if k != "description"})
            json_schema["description"] = f"{told}\n\n{rule['description']}".strip()
        return json_schema


def query_parameter_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query model's property as a parameter: absent rather than null, and an array as one
    comma-separated value."""
    schema = dict(schema)
    options = [o for o in schema.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in schema:
        del schema["anyOf"]
        schema.update(options[0] if len(options) == 1 else {"anyOf": options})
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema
