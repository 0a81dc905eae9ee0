"""Request ids on every response, and every failure turned into the error envelope (or into the
error body its route's contract declares)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from api.errors import ERROR_CONTRACTS, Failure, envelope, error_response, failure_of
from api.keys import CLOCK
from domain.errors import AutopilotError

log = structlog.get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def request_id_of(request: web.Request) -> str:
    return request[REQUEST_ID]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the auth middleware, so a 401 is shaped like any other error of its route."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(request_id=request[REQUEST_ID]):
        try:
            return await handler(request)
        except AutopilotError as exc:
            return _answer(request, failure_of(exc))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _answer(request, failure_of(exc))
            if "Allow" in exc.headers:  # a 405 says which methods the route takes
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            log.exception("unhandled error", path=request.path)
            return _answer(request, failure_of(exc))


def _answer(request: web.Request, failure: Failure) -> web.Response:
    request_id = request[REQUEST_ID]
    contract = request.app.get(ERROR_CONTRACTS, {}).get(request.match_info.route)
    if contract is None:
        return error_response(failure.status, envelope(failure, request_id))
    return error_response(failure.status, contract.body(failure, request_id, request.app[CLOCK]()))


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook, so static files and streams carry the id too."""
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]
