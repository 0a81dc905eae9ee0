"""Liveness, readiness (database reachable, migrations current), the OpenAPI document and the event
streams' AsyncAPI document."""

from __future__ import annotations

from functools import cache

from aiohttp import web

from api.asyncapi import build_asyncapi
from api.keys import DB
from api.openapi import build_openapi
from api.routing import RouteTable, respond
from api.schemas import Health, JsonDocument, Readiness
from store.database import schema_status

routes = RouteTable()
OPENAPI = web.AppKey("openapi", dict)


@routes.route("GET", "/healthz", summary="The process is up", responses={200: Health}, public=True, tag="ops")
async def healthz(request: web.Request) -> web.Response:
    return respond(Health())


@routes.route("GET", "/readyz", summary="Database reachable and migrations current",
              responses={200: Readiness, 503: Readiness}, public=True, tag="ops")
async def readyz(request: web.Request) -> web.Response:
    try:
        current, head = await schema_status(request.app[DB])
    except Exception as exc:
        return respond(Readiness(status="not_ready", database=f"unreachable: {exc.__class__.__name__}",
                                 migrations={"current": None, "head": None}), 503)
    ready = current == head
    return respond(
        Readiness(status="ready" if ready else "not_ready", database="ok",
                  migrations={"current": current, "head": head}),
        200 if ready else 503,
    )


@routes.route("GET", "/openapi.json", summary="This API's OpenAPI 3.1 document",
              responses={200: JsonDocument},
              public=True, tag="ops")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@routes.route("GET", "/asyncapi.json", summary="The event streams' AsyncAPI 3.0 document: every topic and its payload",
              responses={200: JsonDocument}, public=True, tag="ops")
async def asyncapi(request: web.Request) -> web.Response:
    return web.json_response(asyncapi_document())


def openapi_document(all_specs: list) -> dict:
    return build_openapi(all_specs, title="Autopilot", version="0.1.0")


@cache
def asyncapi_document() -> dict:
    """Built once: it depends on the code only."""
    return build_asyncapi(title="Autopilot", version="0.1.0")
