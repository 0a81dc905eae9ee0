"""Workflows: the catalogue with counts, manual triggers, and resuming paused runs."""

from __future__ import annotations

from aiohttp import web

from api.auth import PRINCIPAL
from api.idempotency import IdempotentRequest
from api.keys import CATALOG, LAUNCHER, PIPELINE, RUNS
from api.middleware import request_id_of
from api.routes_exceptions import start_run_once
from api.routing import RouteTable, read_body, respond
from api.schemas import (
    ErrorEnvelope,
    ResumeRunRequest,
    ResumeRunResponse,
    ResumeStatus,
    RunRef,
    TriggerWorkflowRequest,
    TriggerWorkflowResponse,
    WorkflowList,
    WorkflowOut,
)
from domain.errors import RunNotPaused
from domain.statuses import RunStatus
from domain.topics import Topic
from pipeline.hitl import Decider
from store.records import RunRecord

routes = RouteTable()


def resume_status(decision: str, run: RunRecord, actor: str) -> ResumeStatus:
    """What a decision did: ``rejected`` ended the run; an approval the gate counted while it waits
    for more distinct approvers is ``approval_recorded``; otherwise the gate opened and the run was
    dispatched, ``resuming``, wherever it stands now (done, waiting for a step, or paused again at
    another gate)."""
    if decision == "reject":
        return "rejected"
    pause = run.state.pause if run.status == RunStatus.PAUSED else None
    if pause and any(approval.by == actor for approval in pause.approvals):
        return "approval_recorded"
    return "resuming"


@routes.route("GET", "/api/v1/workflows", summary="Workflows with their last run and counts per status",
              responses={200: WorkflowList}, permission="runs:read", tag="workflows")
async def list_workflows(request: web.Request) -> web.Response:
    tenant = request[PRINCIPAL].tenant
    counts = await request.app[RUNS].counts_by_workflow(tenant)
    latest = await request.app[RUNS].latest_per_workflow(tenant)
    items = []
    for workflow in request.app[CATALOG].workflows.workflows:
        last = latest.get(workflow.id)
        per_status = counts.get(workflow.id, {})
        items.append(WorkflowOut(
            id=workflow.id, name=workflow.name, description=workflow.description,
            last_run=RunRef(id=last.id, status=last.status, created_at=last.created_at) if last else None,
            counts=per_status, total_runs=sum(per_status.values()),
        ))
    return respond(WorkflowList(items=items))


@routes.route("POST", "/api/v1/workflows/{workflow_id}/trigger", summary="Start a workflow run by hand",
              body=TriggerWorkflowRequest, responses={202: TriggerWorkflowResponse}, idempotent=True,
              permission="workflows:trigger", tag="workflows")
async def trigger_workflow(request: web.Request) -> web.Response:
    launcher = request.app[LAUNCHER]
    workflow = launcher.workflow(request.match_info["workflow_id"])
    body, canonical = await read_body(request, TriggerWorkflowRequest)
    params = launcher.check(workflow, body.payload, "body.payload", request[PRINCIPAL].tenant)
    return await start_run_once(
        request, canonical, params, workflow=workflow, trigger_type="manual",
        answer=lambda run: TriggerWorkflowResponse(workflow_id=workflow.id, run_id=run.id),
        extra_events=[(Topic.WORKFLOW_TRIGGERED, {"workflow_id": workflow.id, "trigger_type": "manual"})],
    )


@routes.route("POST", "/api/v1/workflows/{workflow_id}/runs/{run_id}/resume",
              summary="Approve or reject a paused run", body=ResumeRunRequest,
              responses={202: ResumeRunResponse, 409: ErrorEnvelope}, idempotent=True, permission="runs:resume",
              tag="workflows")
async def resume_run(request: web.Request) -> web.Response:
    workflow_id, run_id = request.match_info["workflow_id"], request.match_info["run_id"]
    principal = request[PRINCIPAL]
    body, canonical = await read_body(request, ResumeRunRequest)
    idempotent = IdempotentRequest(request, principal.tenant, canonical)

    def answer(run: RunRecord) -> ResumeRunResponse:
        return ResumeRunResponse(
            status=resume_status(body.payload["decision"], run, principal.actor),
            run_id=run_id, workflow_id=workflow_id, event_topic=Topic.HITL_RESUMED,
        )

    async def resume() -> web.Response:
        run = await request.app[PIPELINE].resume(
            principal.tenant, workflow_id, run_id, body.payload, actor=principal.actor,
            decider=Decider(principal.actor, principal.roles, principal.queues),
            request_id=request_id_of(request),
            idempotency=idempotent.spec(202, answer),
        )
        return respond(answer(run), 202)

    return await idempotent.answer_once(resume, lost_race=(RunNotPaused,))
