"""Schedules: list, create, change, delete, pause, resume, fire now, backfill, and history."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from agents.exception_input import Body
from api.auth import PRINCIPAL
from api.keys import SCHEDULES
from api.middleware import request_id_of
from api.routing import RouteTable, read_body, read_query, respond
from api.schedule_schemas import (
    BackfillAccepted,
    BackfillRequest,
    PauseRequest,
    RunNowAccepted,
    ScheduleCreate,
    ScheduleHistory,
    ScheduleList,
    ScheduleLogOut,
    ScheduleOut,
    SchedulePatch,
)
from api.schemas import ErrorEnvelope
from config.schedules import ScheduleSettings
from pipeline.scheduler import ScheduleService
from store.records import ScheduleRecord

routes = RouteTable()
ONE = "/api/v1/schedules/{schedule_id}"


class HistoryQuery(Body):
    kind: str | None = Field(None, max_length=200, description="Comma-separated kinds")
    cursor: int | None = Field(None, ge=1, le=2**63 - 1)
    limit: int = Field(100, ge=1, le=500)


def schedule_out(service: ScheduleService, record: ScheduleRecord) -> ScheduleOut:
    settings = service.settings_of(record)
    return ScheduleOut(
        id=record.id, workflow=record.workflow_id, description=settings.description, trigger=settings.trigger,
        payload=settings.payload, overlap=settings.overlap, catch_up_seconds=settings.catch_up_seconds,
        jitter_seconds=settings.jitter_seconds, pause_after_failures=settings.pause_after_failures,
        paused=record.paused, paused_reason=record.paused_reason, consecutive_failures=record.consecutive_failures,
        next_fires=service.upcoming(record), last_fire_at=record.last_fire_at, last_run_id=record.last_run_id,
        running=service.busy(record.tenant_id, record.id), origin=record.origin, version=record.version,
        created_at=record.created_at, created_by=record.created_by, updated_at=record.updated_at,
        updated_by=record.updated_by,
    )


def _ids(request: web.Request) -> tuple[ScheduleService, str, str, str]:
    principal = request[PRINCIPAL]
    return request.app[SCHEDULES], principal.tenant, request.match_info.get("schedule_id", ""), principal.actor


@routes.route("GET", "/api/v1/schedules", summary="Schedules with their next fire times",
              responses={200: ScheduleList}, permission="runs:read", tag="schedules")
async def list_schedules(request: web.Request) -> web.Response:
    service, tenant, _, _ = _ids(request)
    return respond(ScheduleList(items=[schedule_out(service, r) for r in await service.repo.list_for(tenant)]))


@routes.route("POST", "/api/v1/schedules", summary="Create a schedule", body=ScheduleCreate,
              responses={201: ScheduleOut, 409: ErrorEnvelope}, permission="schedules:manage", tag="schedules")
async def create_schedule(request: web.Request) -> web.Response:
    service, tenant, _, actor = _ids(request)
    body, _ = await read_body(request, ScheduleCreate)
    settings = body.model_dump(exclude={"id"})
    record = await service.create(tenant, body.id, ScheduleSettings.model_validate(settings), actor)
    return respond(schedule_out(service, record), 201, headers={"Location": f"/api/v1/schedules/{record.id}"})


@routes.route("GET", ONE, summary="One schedule", responses={200: ScheduleOut}, permission="runs:read",
              tag="schedules")
async def get_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, _ = _ids(request)
    return respond(schedule_out(service, await service.get(tenant, schedule_id)))


@routes.route("PATCH", ONE, summary="Change a schedule", body=SchedulePatch, responses={200: ScheduleOut},
              permission="schedules:manage", tag="schedules")
async def update_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    body, _ = await read_body(request, SchedulePatch)
    changes = body.model_dump(mode="json", exclude_unset=True)
    return respond(schedule_out(service, await service.update(tenant, schedule_id, changes, actor)))


@routes.route("DELETE", ONE, summary="Delete a schedule (its history stays)", responses={204: None},
              permission="schedules:manage", tag="schedules")
async def delete_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    await service.delete(tenant, schedule_id, actor)
    return web.Response(status=204)


@routes.route("POST", ONE + "/pause", summary="Pause a schedule", body=PauseRequest,
              responses={200: ScheduleOut}, permission="schedules:manage", tag="schedules")
async def pause_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    body, _ = await read_body(request, PauseRequest)
    return respond(schedule_out(service, await service.set_paused(tenant, schedule_id, True, actor, body.reason)))


@routes.route("POST", ONE + "/resume", summary="Resume a paused schedule, counting from now",
              responses={200: ScheduleOut}, permission="schedules:manage", tag="schedules")
async def resume_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    return respond(schedule_out(service, await service.set_paused(tenant, schedule_id, False, actor)))


@routes.route("POST", ONE + "/run-now", summary="Fire a schedule once, now", responses={202: RunNowAccepted},
              permission="workflows:trigger", tag="schedules")
async def run_schedule_now(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    run = await service.run_now(tenant, schedule_id, actor, request_id_of(request))
    return respond(RunNowAccepted(schedule_id=schedule_id, run_id=run.id, workflow_id=run.workflow_id,
                                  status=run.status), 202)


@routes.route("POST", ONE + "/backfill", summary="Fire a schedule for each of its times in a past range",
              body=BackfillRequest, responses={202: BackfillAccepted}, permission="schedules:manage",
              tag="schedules")
async def backfill_schedule(request: web.Request) -> web.Response:
    service, tenant, schedule_id, actor = _ids(request)
    body, _ = await read_body(request, BackfillRequest)
    times = await service.backfill(tenant, schedule_id, body.start, body.end, actor)
    return respond(BackfillAccepted(schedule_id=schedule_id, count=len(times), times=times), 202)


@routes.route("GET", ONE + "/history", summary="What happened to a schedule, newest first", query=HistoryQuery,
              responses={200: ScheduleHistory}, permission="runs:read", tag="schedules")
async def schedule_history(request: web.Request) -> web.Response:
    service, tenant, schedule_id, _ = _ids(request)
    query = read_query(request, HistoryQuery)
    await service.get(tenant, schedule_id)
    kinds = [k for k in (query.kind or "").split(",") if k]
    entries = await service.repo.history(tenant, schedule_id, kinds=kinds, before_id=query.cursor,
                                         limit=query.limit + 1)
    page = entries[: query.limit]
    items = [ScheduleLogOut(id=e.id, at=e.at, kind=e.kind, actor=e.actor, scheduled_for=e.scheduled_for,
                            run_id=e.run_id, detail=e.detail) for e in page]
    return respond(ScheduleHistory(items=items, next_cursor=page[-1].id if len(entries) > query.limit else None))
