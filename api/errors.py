"""The one place failures become HTTP statuses and codes, and the envelope every error answers with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import BaseModel

from domain import errors

HTTP_STATUS: dict[type[errors.AutopilotError], int] = {
    errors.ValidationFailed: 400,
    errors.UnsupportedMediaType: 415,
    errors.UriTooLong: 414,
    errors.HeaderTooLarge: 431,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.RunNotPaused: 409,
    errors.StepNotCompletable: 400,
    errors.StepAlreadyTerminal: 409,
    errors.RunChanged: 409,
    errors.RunNotActive: 409,
    errors.RunNotWaiting: 409,
    errors.LoopConflict: 409,
    errors.AlreadyApproved: 409,
    errors.ScheduleExists: 409,
    errors.DeliveryPending: 409,
    errors.WebhookChanged: 409,
    errors.IdempotencyKeyReused: 422,
    errors.Unavailable: 503,
    errors.CopilotUpstreamFailed: 502,
    errors.CopilotUpstreamTimeout: 504,
}

HTTP_EXCEPTION_CODES: dict[int, tuple[str, str]] = {
    404: ("ROUTE_NOT_FOUND", "no such route"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed on this route"),
    413: ("PAYLOAD_TOO_LARGE", "request body too large"),
}
"""aiohttp's own refusals, raised before any handler of ours runs."""


@dataclass(frozen=True)
class Failure:
    """What a client is told about something that went wrong."""

    status: int
    code: str
    message: str
    details: Any = None


INTERNAL = Failure(500, "INTERNAL_ERROR", "internal error; quote the request id")


def status_of(error: errors.AutopilotError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def failure_of(exc: Exception) -> Failure:
    """Our errors by their class, aiohttp's refusals by their status, anything else a 500 that
    names no internals (the log has them, under the request id)."""
    if isinstance(exc, errors.AutopilotError):
        return Failure(status_of(exc), exc.code, exc.message, exc.details)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        code, message = HTTP_EXCEPTION_CODES.get(exc.status, ("HTTP_ERROR", exc.reason))
        return Failure(exc.status, code, message)
    return INTERNAL


def envelope(failure: Failure, request_id: str | None) -> dict[str, Any]:
    return {
        "error": {"code": failure.code, "message": failure.message, "details": failure.details},
        "request_id": request_id,
    }


@dataclass(frozen=True)
class ErrorContract:
    """A route whose published contract shapes its error bodies (seed 003's loop API), declared
    with the route. The envelope keeps its keys and gains ``schemaVersion``, ``requestId`` and
    ``timestamp``; ``codes`` fixes the code the contract names for a status."""

    schema_version: str
    model: type[BaseModel]
    """The body as ``/openapi.json`` documents it."""
    codes: Mapping[int, str] = field(default_factory=dict)

    def body(self, failure: Failure, request_id: str, now: datetime) -> dict[str, Any]:
        code = self.codes.get(failure.status, failure.code)
        return {
            "schemaVersion": self.schema_version,
            "requestId": request_id,
            **envelope(Failure(failure.status, code, failure.message, failure.details), request_id),
            "timestamp": now.isoformat(),
        }


ERROR_CONTRACTS = web.AppKey[dict[AbstractRoute, ErrorContract]]("error_contracts")
"""The routes that declared an ``ErrorContract``, filled as the route tables are installed."""


def error_response(status: int, body: dict[str, Any]) -> web.Response:
    response = web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="autopilot"'
    return response
