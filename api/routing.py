"""Routes declared with their models, so bodies are validated the same way everywhere and
the OpenAPI document is generated from the very declarations the server runs."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel

from api.auth import PRINCIPAL
from api.errors import ERROR_CONTRACTS, ErrorContract
from api.keys import CATALOG
from domain.errors import Forbidden, ValidationFailed
from pipeline.validation import validate

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 1 << 20


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
            handler = spec.handler if spec.permission is None else _requiring(spec.permission, spec.handler)
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


def _nul_in(value: Any, path: str) -> str | None:
    """Where a NUL character hides in parsed JSON (keys included): no store keeps it faithfully."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path
            if (found := _nul_in(item, f"{path}.{key}")) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_in(item, f"{path}[{index}]")) is not None:
                return found
    return None


async def read_body(request: web.Request, model: type[M]) -> tuple[M, bytes]:
    """The validated body, and its canonical JSON (sorted keys) for idempotency fingerprints."""
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise ValidationFailed("the body is too large", [{"field": "body", "message": "over 1 MiB"}])
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"the body is not valid JSON: {exc}", [{"field": "body", "message": str(exc), "type": "json_invalid"}]
        ) from exc
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    if (where := _nul_in(data, "body")) is not None:
        raise ValidationFailed(
            f"invalid {where}: NUL characters are not allowed", [{"field": where, "message": "contains \\u0000"}]
        )
    return validate(model, data, "body"), orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def read_query(request: web.Request, model: type[M]) -> M:
    query = dict(request.query)
    if (where := _nul_in(query, "query")) is not None:
        raise ValidationFailed(f"invalid {where}: NUL characters are not allowed", [{"field": where, "message": "NUL"}])
    return validate(model, query, "query")


def respond(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=model.__pydantic_serializer__.to_json(model),
        content_type="application/json",
        headers=headers,
    )
