"""Live events as server-sent events: the tenant's whole log, or one run's (``api/sse.py``)."""

from __future__ import annotations

import re
from typing import Annotated

from aiohttp import web
from pydantic import Field

from agents.exception_input import Body
from api.auth import PRINCIPAL, accepts_query_token
from api.event_docs import RunEventMessages
from api.keys import BUS, EVENTS, RUNS
from api.routes_runs import run_in_path
from api.routing import RouteTable, read_query
from api.schemas import ErrorEnvelope
from api.sse import EVENT_STREAM, serve
from domain.errors import RunNotFound, ValidationFailed
from eventbus import SubscriptionFilter

routes = RouteTable()
MAX_PATTERNS = 16
MAX_EVENT_ID = (1 << 63) - 1
"""Event ids are BIGINT: a larger resume point cannot be one, and the database refuses to compare with it."""
_EVENT_ID = re.compile(r"[0-9]{1,19}")
_WORDS = r"[A-Za-z0-9_\-*#]+(\.[A-Za-z0-9_\-*#]+)*"
_PATTERN = re.compile(f"^{_WORDS}$")
TOPICS = f"^ *{_WORDS} *(, *{_WORDS} *){{0,{MAX_PATTERNS - 1}}}$"
"""``?topics=`` as the document shows it (``_patterns`` also skips empty entries between commas)."""


class RunStreamQuery(Body):
    topics: Annotated[str, Field(max_length=1000, json_schema_extra={"pattern": TOPICS})] | None = Field(
        None, description=f"1 to {MAX_PATTERNS} comma-separated topic patterns of dot-separated words: '*' one "
        "segment, '#' any (run.*,playbook.#)",
    )
    last_event_id: int | None = Field(
        None, ge=0, le=MAX_EVENT_ID,
        description="Replay the log after this event id first; the Last-Event-ID header takes precedence"
    )
    access_token: str | None = Field(
        None, max_length=8192, description="The bearer token, for clients that cannot send headers (EventSource); "
        "accepted on the stream routes only"
    )


class StreamQuery(RunStreamQuery):
    run_id: str | None = Field(None, max_length=64, description="Only this run's events")


def _patterns(topics: str | None) -> tuple[str, ...]:
    if topics is None:
        return ("#",)
    patterns = tuple(p.strip() for p in topics.split(",") if p.strip())
    bad = [p for p in patterns if not _PATTERN.match(p)]
    if not patterns or bad or len(patterns) > MAX_PATTERNS:
        message = f"topics must be 1 to {MAX_PATTERNS} comma-separated patterns of dot-separated words, '*' or '#'"
        raise ValidationFailed(message, [{"field": "query.topics", "message": message}])
    return patterns


def _last_event_id(request: web.Request, query: RunStreamQuery) -> int | None:
    """Where to resume: the ``Last-Event-ID`` header an ``EventSource`` sends on reconnecting,
    else ``?last_event_id=``; neither means live events only."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return query.last_event_id
    if not _EVENT_ID.fullmatch(header) or int(header) > MAX_EVENT_ID:  # isdigit() takes '²', which int() refuses
        message = "Last-Event-ID must be an event id sent by this stream"
        raise ValidationFailed(message, [{"field": "header.Last-Event-ID", "message": message}])
    return int(header)


@routes.route("GET", "/api/v1/events/stream", summary="The tenant's events as they are committed (server-sent events)",
              query=StreamQuery, responses={200: RunEventMessages, 404: ErrorEnvelope}, permission="runs:read",
              tag="runs", media_type=EVENT_STREAM)
@accepts_query_token
async def stream_events(request: web.Request) -> web.StreamResponse:
    query = read_query(request, StreamQuery)
    tenant = request[PRINCIPAL].tenant
    wanted = SubscriptionFilter(tenant, _patterns(query.topics), query.run_id)
    if query.run_id is not None and await request.app[RUNS].get(tenant, query.run_id) is None:
        raise RunNotFound(f"no run {query.run_id}")
    resume = _last_event_id(request, query)
    return await serve(request, request.app[BUS], request.app[EVENTS], wanted, resume)


@routes.route("GET", "/api/v1/runs/{run_id}/events/stream", summary="One run's events as they are committed "
              "(server-sent events)", query=RunStreamQuery, responses={200: RunEventMessages}, permission="runs:read",
              tag="runs", media_type=EVENT_STREAM)
@accepts_query_token
async def stream_run_events(request: web.Request) -> web.StreamResponse:
    query = read_query(request, RunStreamQuery)
    patterns = _patterns(query.topics)
    run = await run_in_path(request)  # another tenant's run is a 404 before anything streams
    wanted = SubscriptionFilter(request[PRINCIPAL].tenant, patterns, run.id)
    resume = _last_event_id(request, query)
    return await serve(request, request.app[BUS], request.app[EVENTS], wanted, resume)
