"""The one place error codes become HTTP statuses, and the envelope every error answers with."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from domain import errors

HTTP_STATUS: dict[type[errors.AutopilotError], int] = {
    errors.ValidationFailed: 400,
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
    errors.IdempotencyKeyReused: 422,
    errors.Unavailable: 503,
    errors.CopilotUpstreamFailed: 502,
    errors.CopilotUpstreamTimeout: 504,
}


def status_of(error: errors.AutopilotError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]  # type: ignore[index]
    return 500


def envelope(code: str, message: str, details: Any, request_id: str | None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details},
        "request_id": request_id,
    }


def error_response(
    status: int, code: str, message: str, details: Any = None, request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    """The envelope; ``extra`` adds the top-level fields a route's own contract promises."""
    body = orjson.dumps({**envelope(code, message, details, request_id), **(extra or {})})
    response = web.Response(status=status, body=body, content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="autopilot"'
    return response
