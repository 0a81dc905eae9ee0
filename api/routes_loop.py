"""``POST /api/v1/runs/{run_id}/run-next-step``: seed 003's contract-first "run next step".

Its answers and its errors carry ``schemaVersion`` (and errors a ``timestamp``), on top of our
usual envelope; ``requestId`` is the request's UUID, also sent as ``x-request-id``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from agents.exception_input import Body
from api.auth import PRINCIPAL
from api.keys import CATALOG, CLOCK, PIPELINE
from api.middleware import ERROR_EXTRAS, request_id_of
from api.routing import RouteTable, read_body, respond
from pipeline.next_step import loop_status, newly_done_step, next_playbook_step, why_nothing_ran

routes = RouteTable()
SCHEMA_VERSION = "loop.runNextStep.v1"


class RunNextStepRequest(Body):
    mode: Literal["execute", "dryRun"] = Field("execute", description="dryRun changes nothing")


class StepExecuted(BaseModel):
    stepNumber: int = Field(ge=1)
    stepType: str
    stepId: str
    status: Literal["pending", "running", "completed", "failed", "skipped"]
    startedAt: datetime
    completedAt: datetime | None = None
    durationMs: int | None = Field(None, ge=0)


class NextStepInfo(BaseModel):
    stepNumber: int = Field(ge=1)
    stepType: str
    stepId: str
    stepName: str
    status: str
    assignee: str | None = None
    estimatedDurationMs: int | None = Field(None, ge=0)


class RunNextStepResponse(BaseModel):
    """What ran (if anything), what comes next, and where the run's loop stands."""

    schemaVersion: Literal["loop.runNextStep.v1"] = SCHEMA_VERSION
    requestId: str
    runId: str
    stepExecuted: StepExecuted | None = None
    nextStep: NextStepInfo | None = None
    loopStatus: Literal["active", "completed", "failed", "paused"]
    message: str | None = None


def _error_extras() -> dict[str, Any]:
    return {"schemaVersion": SCHEMA_VERSION, "timestamp": datetime.now(UTC).isoformat()}


@routes.route("POST", "/api/v1/runs/{run_id}/run-next-step", summary="Run (or, with dryRun, preview) a run's next step",
              body=RunNextStepRequest, responses={200: RunNextStepResponse}, permission="runs:advance", tag="playbooks")
async def run_next_step(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    body, _ = await read_body(request, RunNextStepRequest)
    execute = body.mode == "execute"
    catalog = request.app[CATALOG]
    started_at, started = request.app[CLOCK](), time.perf_counter()
    before, after = await request.app[PIPELINE].run_next_step(
        request[PRINCIPAL].tenant, run_id, execute=execute, request_id=request_id_of(request)
    )
    upcoming = next_playbook_step(after, catalog)
    executed = newly_done_step(before, after, catalog) if after is not before else None
    if executed is not None:
        message = f"executed step {executed['stepId']}"
    elif after is not before:
        message = f"advanced the run to {after.status}"
    elif execute:
        message = why_nothing_ran(after, upcoming)
    else:
        message = "dry run: " + why_nothing_ran(after, upcoming)
    answer = RunNextStepResponse(
        requestId=request_id_of(request),
        runId=run_id,
        stepExecuted=StepExecuted(
            **executed, startedAt=started_at, completedAt=request.app[CLOCK](),
            durationMs=int((time.perf_counter() - started) * 1000),
        ) if executed else None,
        nextStep=NextStepInfo(**upcoming) if upcoming else None,
        loopStatus=loop_status(after),
        message=message,
    )
    return respond(answer)


setattr(run_next_step, ERROR_EXTRAS, _error_extras)
