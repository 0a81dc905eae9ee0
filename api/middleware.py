"""Request ids on every response, and every failure turned into the error envelope."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from api.errors import error_response, status_of
from domain.errors import AutopilotError

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
ERROR_EXTRAS = "error_extras"
"""A handler attribute: a function giving top-level fields its contract adds to every error body."""
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

_HTTP_CODES = {
    404: ("ROUTE_NOT_FOUND", "no such route"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed on this route"),
    413: ("PAYLOAD_TOO_LARGE", "request body too large"),
}


def request_id_of(request: web.Request) -> str:
    return request[REQUEST_ID]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
    extras = getattr(request.match_info.handler, ERROR_EXTRAS, None)

    def failed(status: int, code: str, message: str, details: object = None) -> web.Response:
        return error_response(status, code, message, details, request[REQUEST_ID], extras() if extras else None)

    with structlog.contextvars.bound_contextvars(request_id=request[REQUEST_ID]):
        try:
            return await handler(request)
        except AutopilotError as exc:
            return failed(status_of(exc), exc.code, exc.message, exc.details)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code, message = _HTTP_CODES.get(exc.status, ("HTTP_ERROR", exc.reason))
            return failed(exc.status, code, message)
        except Exception:
            log.exception("unhandled error", path=request.path)
            return failed(500, "INTERNAL_ERROR", "internal error; quote the request id")


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook, so static files and streams carry the id too."""
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]
