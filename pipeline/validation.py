"""Checking data against a pydantic model, with every problem named by its field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from domain.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError, prefix: str) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"])
        details.append({"field": f"{prefix}.{loc}" if loc else prefix, "message": err["msg"], "type": err["type"]})
    return details


def failed(exc: ValidationError, prefix: str) -> ValidationFailed:
    """``exc`` as the 400 every caller answers: each field named under ``prefix``, the first in the message."""
    details = field_errors(exc, prefix)
    return ValidationFailed(f"invalid {details[0]['field']}: {details[0]['message']}", details)


def invalid(field: str, problem: str, kind: str) -> ValidationFailed:
    """One field's problem, found by a check of our own, in the same shape."""
    return ValidationFailed(f"invalid {field}: {problem}", [{"field": field, "message": problem, "type": kind}])


def validate(model: type[M], data: Any, prefix: str) -> M:
    """``model`` from ``data``, or ``ValidationFailed`` naming each field under ``prefix``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise failed(exc, prefix) from exc


def validate_json(model: type[M], raw: bytes, prefix: str) -> M:
    """``model`` from JSON text, strictly: JSON's own types only, nothing coerced."""
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise failed(exc, prefix) from exc
