"""Ingesting exceptions: each one starts a run of the exception pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from agents.exception_input import ExceptionIn
from api.auth import PRINCIPAL
from api.idempotency import IdempotentRequest
from api.keys import LAUNCHER
from api.middleware import request_id_of
from api.routing import RouteTable, read_body, respond
from api.schemas import RunAccepted
from config.workflows import Workflow
from domain.topics import Topic
from pipeline.start_request import StartRequest
from store.records import RunRecord
from store.writer import WriteConflict

routes = RouteTable()
PIPELINE_WORKFLOW = "exception_pipeline"


def accepted(run: RunRecord) -> RunAccepted:
    """The 202 of a pipeline run just started."""
    return RunAccepted(
        run_id=run.id, workflow_id=run.workflow_id, status=run.status,
        links={"run": f"/api/v1/runs/{run.id}", "events": f"/api/v1/runs/{run.id}/events"},
    )


async def start_run_once(
    request: web.Request,
    canonical_body: bytes,
    params: dict[str, Any],
    *,
    workflow: Workflow,
    trigger_type: str,
    answer: Callable[[RunRecord], BaseModel],
    extra_events: Sequence[tuple[Topic, dict[str, Any]]] = (),
    playbook: str | None = None,
) -> web.Response:
    """Start a run of ``workflow`` with checked ``params`` unless this request was already
    answered; ``answer(run)`` is the 202 body."""
    principal = request[PRINCIPAL]
    idempotent = IdempotentRequest(request, principal.tenant, canonical_body)
    launcher = request.app[LAUNCHER]

    async def start() -> web.Response:
        run_id = launcher.writer.new_run_id()
        run = await launcher.start(workflow, StartRequest(
            principal.tenant, workflow.id, params, actor=principal.actor, trigger_type=trigger_type, run_id=run_id,
            request_id=request_id_of(request), idempotency=idempotent.spec(202, answer),
            extra_events=tuple((topic, {**payload, "run_id": run_id}) for topic, payload in extra_events),
            playbook=playbook,
        ))
        return respond(answer(run), 202)

    return await idempotent.answer_once(start, lost_race=(WriteConflict,))


@routes.route("POST", "/api/v1/exceptions", summary="Ingest an exception; starts a pipeline run",
              body=ExceptionIn, responses={202: RunAccepted}, idempotent=True,
              permission="exceptions:ingest", tag="exceptions")
async def ingest_exception(request: web.Request) -> web.Response:
    exception, canonical = await read_body(request, ExceptionIn)
    workflow = request.app[LAUNCHER].workflow(PIPELINE_WORKFLOW)
    return await start_run_once(
        request, canonical, exception.model_dump(mode="json"), workflow=workflow, trigger_type="api",
        answer=accepted,
    )
