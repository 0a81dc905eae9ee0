"""Routes declared with their models, so bodies are validated the same way everywhere and
the OpenAPI document is generated from the very declarations the server runs."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel

from api.auth import PRINCIPAL
from api.errors import ERROR_CONTRACTS, ErrorContract
from api.json_limits import json_problem
from api.keys import CATALOG
from domain.errors import Forbidden, UnsupportedMediaType, ValidationFailed
from pipeline.validation import invalid, validate, validate_json

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 1 << 20
JSON = "application/json"


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    public: bool = False
    idempotent: bool = False
    tag: str = "api"
    permission: str | None = None
    media_type: str = "application/json"
    """Of the success answers: ``text/event-stream`` for the event streams."""
    errors: ErrorContract | None = None
    """The route's own shape for its error bodies (401 and 403 included), when its contract has one."""


class RouteTable:
    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        responses: dict[int, type[BaseModel] | None],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        public: bool = False,
        idempotent: bool = False,
        tag: str = "api",
        permission: str | None = None,
        media_type: str = "application/json",
        errors: ErrorContract | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route; every route that is not ``public`` names the permission it needs."""
        if not public and permission is None:
            raise ValueError(f"{method} {path} must name the permission it needs")

        def register(handler: Handler) -> Handler:
            self.specs.append(
                RouteSpec(method, path, handler, summary, responses, body, query, public, idempotent, tag, permission,
                          media_type, errors)
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        contracts = app.setdefault(ERROR_CONTRACTS, {})
        for spec in self.specs:
            handler = spec.handler if spec.body is None else _taking_json(spec.handler)
            handler = handler if spec.permission is None else _requiring(spec.permission, handler)
            route = app.router.add_route(spec.method, spec.path, handler)
            if spec.errors is not None:
                contracts[route] = spec.errors


def _requiring(permission: str, handler: Handler) -> Handler:
    """``handler`` behind a check that the caller's roles grant ``permission`` (403 otherwise)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        granted = request.app[CATALOG].roles.granted(request[PRINCIPAL].roles)
        if permission not in granted:
            raise Forbidden(f"this needs the '{permission}' permission", {"permission": permission})
        return await handler(request)

    return guarded


def _missing_body() -> ValidationFailed:
    return invalid("body", "a JSON object is required (send {} when no field is needed)", "missing")


def _taking_json(handler: Handler) -> Handler:
    """``handler`` (of a route with a body) behind the checks of what the request says of its body,
    so every body route refuses the same way before its handler looks anything up."""

    @functools.wraps(handler)
    async def taking_json(request: web.Request) -> web.StreamResponse:
        check_json_request(request)
        return await handler(request)

    return taking_json


def check_json_request(request: web.Request) -> None:
    """A body is there (400), is JSON (RFC 8259: UTF-8) as ``Content-Type`` says (415: a form,
    text or a missing type is refused rather than guessed at) and, by its length, not over the
    limit (413)."""
    if not request.body_exists:
        raise _missing_body()
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    charset = request.charset
    if request.content_type != JSON or (charset is not None and charset.lower() not in ("utf-8", "utf8")):
        given = request.headers.get("Content-Type", "none")
        raise UnsupportedMediaType(
            f"the body must be sent as {JSON} (UTF-8), not {given!r}",
            [{"field": "header.Content-Type", "message": f"expected {JSON}", "type": "media_type"}],
        )


async def read_body(request: web.Request, model: type[M]) -> tuple[M, bytes]:
    """The validated body, and its canonical JSON (sorted keys) for idempotency fingerprints.

    Types are strict, as JSON has them: ``"12"`` is not an integer, ``1`` not a boolean, and a
    time is an RFC 3339 string (``config/rfc3339.py``). What the headers say of the body was
    checked before the handler ran (``_taking_json``, on every route declaring its ``body``)."""
    raw = await request.read()  # aiohttp stops a body without a length at client_max_size: 413
    if not raw.strip():
        raise _missing_body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"the body is not valid JSON: {exc}", [{"field": "body", "message": str(exc), "type": "json_invalid"}]
        ) from exc
    if not isinstance(data, dict):
        raise invalid("body", "expected a JSON object", "model_type")
    if (problem := json_problem(data, "body")) is not None:
        raise invalid(*problem, "value_error")
    return validate_json(model, raw, "body"), orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string, validated: its values are text, so numbers are read from their digits,
    but a time must still be an RFC 3339 string. NUL and bytes that are not UTF-8 never get here
    (``api/request_guard.py`` refuses them for every route)."""
    return validate(model, dict(request.query), "query")


def respond(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=model.__pydantic_serializer__.to_json(model),
        content_type="application/json",
        headers=headers,
    )
