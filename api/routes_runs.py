"""Reading runs: the list, the paused ones awaiting a human, one run, and its timeline."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field, field_validator

from agents.exception_input import Body, UtcDatetime
from api.auth import PRINCIPAL
from api.keys import CATALOG, EVENTS, RUNS
from api.routing import RouteTable, read_query, respond
from api.schemas import EventPage, PendingRunList, RunDetail, RunPage
from api.views import event_out, listed_run, pending_listed, run_detail
from domain.errors import RunNotFound
from domain.statuses import RunStatus
from eventbus import topic_matches
from store.records import RunRecord

routes = RouteTable()


class RunQuery(Body):
    status: list[RunStatus] = Field(default_factory=list, description="Comma-separated statuses")
    workflow_id: str | None = None
    schedule_id: str | None = Field(None, max_length=64, description="Runs fired by this schedule")
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    cursor: str | None = Field(None, max_length=64)
    limit: int = Field(50, ge=1, le=500)

    @field_validator("status", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [s for s in value.split(",") if s] if isinstance(value, str) else value


class PageQuery(Body):
    cursor: str | None = Field(None, max_length=64)
    limit: int = Field(100, ge=1, le=500)


class EventQuery(Body):
    after_seq: int = Field(0, ge=0, le=2**31 - 1)
    limit: int = Field(500, ge=1, le=1000)
    topic: str | None = Field(None, max_length=64, description="Topic pattern; * and # wildcards")


@routes.route("GET", "/api/v1/runs", summary="List runs, newest first", query=RunQuery,
              responses={200: RunPage}, permission="runs:read", tag="runs")
async def list_runs(request: web.Request) -> web.Response:
    query = read_query(request, RunQuery)
    runs = await request.app[RUNS].summaries_for(
        request[PRINCIPAL].tenant,
        statuses=[str(s) for s in query.status],
        workflow_id=query.workflow_id,
        trigger_ref=query.schedule_id,
        created_after=query.created_after,
        created_before=query.created_before,
        before_id=query.cursor,
        limit=query.limit + 1,
    )
    page = runs[: query.limit]
    cursor = page[-1].id if len(runs) > query.limit else None
    return respond(RunPage(items=[listed_run(r) for r in page], next_cursor=cursor))


@routes.route("GET", "/api/v1/runs/pending-action", summary="Paused runs awaiting a human decision",
              query=PageQuery, responses={200: PendingRunList}, permission="runs:read", tag="runs")
async def list_pending_runs(request: web.Request) -> web.Response:
    query = read_query(request, PageQuery)
    runs = await request.app[RUNS].pending_for(request[PRINCIPAL].tenant, before_id=query.cursor, limit=query.limit + 1)
    page = runs[: query.limit]
    cursor = page[-1].summary.id if len(runs) > query.limit else None
    return respond(PendingRunList(items=[pending_listed(r) for r in page], next_cursor=cursor))


async def run_in_path(request: web.Request) -> RunRecord:
    """The caller's run named by ``{run_id}``; another tenant's, like a missing one, is a 404."""
    run_id = request.match_info["run_id"]
    run = await request.app[RUNS].get(request[PRINCIPAL].tenant, run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id}")
    return run


@routes.route("GET", "/api/v1/runs/{run_id}", summary="One run: status, stage, results, progress",
              responses={200: RunDetail}, permission="runs:read", tag="runs")
async def get_run(request: web.Request) -> web.Response:
    return respond(run_detail(await run_in_path(request), request.app[CATALOG]))


@routes.route("GET", "/api/v1/runs/{run_id}/events", summary="A run's timeline, in order",
              query=EventQuery, responses={200: EventPage}, permission="runs:read", tag="runs")
async def list_run_events(request: web.Request) -> web.Response:
    query = read_query(request, EventQuery)
    tenant_id, run_id = request[PRINCIPAL].tenant, request.match_info["run_id"]
    events = await request.app[EVENTS].for_run(tenant_id, run_id, after_seq=query.after_seq, limit=query.limit)
    if not events:  # read the run only to tell an empty page from another tenant's or no run (404)
        await run_in_path(request)
    next_after = events[-1].seq if len(events) == query.limit else None
    if query.topic:
        events = [e for e in events if topic_matches(query.topic, e.topic)]
    return respond(EventPage(items=[event_out(e) for e in events], next_after_seq=next_after))
