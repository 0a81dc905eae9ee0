"""Builds the aiohttp application: its state, middlewares, routes, and the background work
(database, pipeline engine) that starts and stops with it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from api import (
    routes_audit,
    routes_copilot,
    routes_deliveries,
    routes_exceptions,
    routes_health,
    routes_loop,
    routes_playbooks,
    routes_runs,
    routes_schedules,
    routes_stream,
    routes_webhooks,
    routes_workflows,
)
from api.auth import PRINCIPAL, QUERY_TOKEN, principal_from, signing_secret
from api.keys import (
    BUS,
    CATALOG,
    CLOCK,
    DB,
    EVENTS,
    IDEMPOTENCY,
    JOBS,
    LAUNCHER,
    PIPELINE,
    RUNS,
    SCHEDULES,
    SETTINGS,
    TOKENS,
    WEBHOOKS,
)
from api.metrics import install_metrics, metrics_middleware
from api.middleware import add_request_id_header, errors_middleware
from api.request_guard import PARSER_ARGS, guard_middleware
from api.routes_health import OPENAPI, openapi_document
from api.routing import MAX_BODY_BYTES, RouteSpec
from api.sse import STREAMS, Streams
from api.tokens import TokenService
from config.catalog import load_catalog
from config.settings import Settings
from eventbus import InProcessBus
from eventbus.feed_bus import FeedBus
from pipeline.clock import Clock, utc_now
from pipeline.runtime import open_runtime
from store.database import migrate, open_engine
from store.event_feed import CHANNEL_OPTION, PostgresEventFeed
from store.events import EventRepository
from store.idempotency import IdempotencyRepository
from store.runs import RunRepository
from store.sole_process import sole_process

log = structlog.get_logger(__name__)
ROUTE_TABLES = [
    routes_health.routes, routes_exceptions.routes, routes_runs.routes, routes_workflows.routes,
    routes_playbooks.routes, routes_loop.routes, routes_audit.routes, routes_schedules.routes,
    routes_stream.routes, routes_copilot.routes, routes_webhooks.routes, routes_deliveries.routes,
]
STATIC_DIR = Path(__file__).resolve().parent / "static"


def route_specs() -> list[RouteSpec]:
    return [spec for table in ROUTE_TABLES for spec in table.specs]


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every ``/api/v1`` route needs a bearer token; health, metrics and static files do not.
    The event streams alone may take it as ``?access_token=`` (``api/auth.py``)."""
    if request.path.startswith("/api/v1/") or request.path == "/api/v1":
        query_token = getattr(request.match_info.handler, QUERY_TOKEN, False)
        request[PRINCIPAL] = principal_from(request, request.app[TOKENS], query_token=query_token)
    return await handler(request)


async def _database(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].resolved_database_url
    with sole_process(url):  # a second server on the same SQLite file refuses to start
        db = open_engine(url, execution_options={CHANNEL_OPTION: app[SETTINGS].event_channel})
        await migrate(db)
        app[DB] = db
        app[RUNS] = RunRepository(db)
        app[EVENTS] = EventRepository(db)
        app[IDEMPOTENCY] = IdempotencyRepository(db)
        yield
        await db.dispose()


async def _event_bus(app: web.Application) -> AsyncIterator[None]:
    """On PostgreSQL, where several processes share the log, the bus follows the log itself
    (``eventbus/feed_bus.py``), from the database's newest event; on SQLite, one process's
    ``InProcessBus``, made with the app, serves."""
    if app[DB].dialect.name != "postgresql":
        yield
        return
    bus = FeedBus(PostgresEventFeed(app[DB]), poll_seconds=app[SETTINGS].event_poll_seconds)
    await bus.start()
    app[BUS] = bus
    yield
    await bus.stop()


async def _pipeline(app: web.Application) -> AsyncIterator[None]:
    async with open_runtime(app[DB], app[BUS], app[CATALOG], app[SETTINGS], clock=app[CLOCK]) as rt:
        app[PIPELINE], app[JOBS], app[LAUNCHER], app[SCHEDULES] = rt.engine, rt.jobs, rt.launcher, rt.schedules
        app[WEBHOOKS] = rt.webhooks
        yield


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    extra_contexts: Sequence[Callable[[web.Application], AsyncIterator[None]]] = (),
) -> web.Application:
    app = web.Application(
        middlewares=[metrics_middleware, errors_middleware, guard_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES, handler_args=PARSER_ARGS,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[CATALOG] = catalog = load_catalog(settings.config_dir)
    for problem in catalog.problems:  # a broken playbook is reported; the rest still serve
        log.warning("playbook not loaded", problem=str(problem))
    app[TOKENS] = TokenService.from_settings(settings, signing_secret(settings))
    app[BUS] = InProcessBus()
    app[STREAMS] = streams = Streams(settings)
    app.on_shutdown.append(streams.shutdown)
    app.on_response_prepare.append(add_request_id_header)
    app.cleanup_ctx.extend([_database, _event_bus, _pipeline, routes_copilot.copilot_context, *extra_contexts])
    for table in ROUTE_TABLES:
        table.install(app)
    install_metrics(app)
    app[OPENAPI] = openapi_document(route_specs())
    if STATIC_DIR.is_dir() and any(STATIC_DIR.iterdir()):
        app.router.add_get("/", _index)
        app.router.add_static("/static/", STATIC_DIR)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")
