"""A run's playbook: its status, and completing the steps that wait for a person or a model."""

from __future__ import annotations

from aiohttp import web

from agents.exception_input import ExceptionIn
from api.auth import PRINCIPAL
from api.idempotency import IdempotentRequest
from api.keys import CATALOG, LAUNCHER, PIPELINE
from api.middleware import request_id_of
from api.routes_exceptions import PIPELINE_WORKFLOW, accepted, start_run_once
from api.routes_runs import run_in_path
from api.routing import RouteTable, read_body, respond
from api.schemas import (
    ErrorEnvelope,
    NextStep,
    PlaybookRecalculation,
    PlaybookStatus,
    RecalculateRequest,
    RunAccepted,
    StepCompletionData,
    StepCompletionPayload,
    StepCompletionResponse,
)
from api.views import playbook_status
from domain.errors import PlaybookNotFound, RunChanged, StepAlreadyTerminal
from pipeline.step_completion import StepCompletion, steps_ready_after
from store.records import RunRecord

routes = RouteTable()


@routes.route("GET", "/api/v1/runs/{run_id}/playbook", summary="The run's playbook and where each step stands",
              responses={200: PlaybookStatus},
              permission="runs:read", tag="playbooks")
async def get_run_playbook(request: web.Request) -> web.Response:
    return respond(playbook_status(await run_in_path(request), request.app[CATALOG]))


@routes.route("POST", "/api/v1/playbooks/{playbook_id}/runs",
              summary="Start a pipeline run of this playbook ('id' or 'id@version') for an exception",
              body=ExceptionIn, responses={202: RunAccepted}, idempotent=True,
              permission="exceptions:ingest", tag="playbooks")
async def run_playbook(request: web.Request) -> web.Response:
    """Seed 001's ``playbooks run``: Triage still classifies and Policy still decides whether a human
    must approve, but the playbook is the one asked for. One the tenant does not approve is a 404."""
    requested = request.match_info["playbook_id"]
    tenant = request[PRINCIPAL].tenant
    catalog = request.app[CATALOG]
    playbook = catalog.playbook(requested)
    if playbook is None or not catalog.policies.for_tenant(tenant).approves(playbook.id):
        raise PlaybookNotFound(f"no playbook {requested} approved for this tenant")
    exception, canonical = await read_body(request, ExceptionIn)
    workflow = request.app[LAUNCHER].workflow(PIPELINE_WORKFLOW)
    return await start_run_once(
        request, canonical, exception.model_dump(mode="json"), workflow=workflow, trigger_type="api",
        answer=accepted, playbook=f"{playbook.id}@{playbook.version}",
    )


@routes.route("POST", "/api/v1/runs/{run_id}/playbook/recalculate",
              summary="Re-run playbook matching; the assignment changes only if a better approved one matches",
              body=RecalculateRequest, responses={200: PlaybookRecalculation, 409: ErrorEnvelope},
              permission="playbooks:recalculate", tag="playbooks")
async def recalculate_playbook(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    principal = request[PRINCIPAL]
    await read_body(request, RecalculateRequest)
    run, outcome = await request.app[PIPELINE].recalculate(
        principal.tenant, run_id, actor=principal.actor, request_id=request_id_of(request)
    )
    return respond(PlaybookRecalculation(
        run_id=run.id, changed=outcome.changed, previous_playbook_id=outcome.previous_playbook_id,
        previous_playbook_version=outcome.previous_playbook_version, playbook_id=outcome.playbook_id,
        playbook_version=outcome.playbook_version, reasoning=outcome.reasoning, run_status=run.status,
    ))


@routes.route("POST", "/api/v1/playbook-runs/{run_id}/complete-step/{step_id}",
              summary="Complete a step waiting for a person or a model, with outputs that meet its contract",
              body=StepCompletionPayload, responses={200: StepCompletionResponse, 409: ErrorEnvelope}, idempotent=True,
              permission="steps:complete", tag="playbooks")
async def complete_playbook_step(request: web.Request) -> web.Response:
    run_id, step_id = request.match_info["run_id"], request.match_info["step_id"]
    principal = request[PRINCIPAL]
    body, canonical = await read_body(request, StepCompletionPayload)
    idempotent = IdempotentRequest(request, principal.tenant, canonical)
    catalog = request.app[CATALOG]
    completion = StepCompletion(
        body.outputs, body.ai_confidence, body.ai_insights, principal.actor, principal.queues,
        may_override="steps:override" in catalog.roles.granted(principal.roles),
    )

    def answer(run: RunRecord) -> StepCompletionResponse:
        record = run.state.steps[step_id]
        playbook = catalog.playbook(run.state.playbook_key or "")
        assert playbook is not None and record.completed_at is not None and record.event_seq is not None
        return StepCompletionResponse(
            message=f"Step {step_id} completed successfully",
            data=StepCompletionData(
                run_id=run.id, step_id=step_id, step_sequence=record.order, outputs=record.outputs or {},
                ai_confidence=record.ai_confidence, ai_insights=record.ai_insights,
                completed_at=record.completed_at, actual_duration_minutes=record.duration_minutes or 0.0,
                completion_event_id=f"{run.id}:{record.event_seq}", completion_event_seq=record.event_seq,
                next_steps=[NextStep(**s) for s in steps_ready_after(playbook, run.state.steps)],
                run_status=run.status, orchestrator_notified=True,
            ),
        )

    async def complete() -> web.Response:
        run = await request.app[PIPELINE].complete_step(
            principal.tenant, run_id, step_id, completion, request_id=request_id_of(request),
            idempotency=idempotent.spec(200, answer),
        )
        return respond(answer(run))

    return await idempotent.answer_once(complete, lost_race=(StepAlreadyTerminal, RunChanged))
