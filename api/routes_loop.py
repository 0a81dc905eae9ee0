"""``POST /api/v1/runs/{run_id}/run-next-step``: seed 003's contract-first "run next step".

Its answers carry ``schemaVersion`` and ``requestId`` (the request's UUID, also sent as
``x-request-id``) and leave out optional fields that are absent. Its error bodies, whatever the
status (the auth middleware's 401 too), add ``schemaVersion``, ``requestId`` and ``timestamp`` to
our envelope, and a 400 is ``INVALID_REQUEST``: the route declares that with ``LOOP_ERRORS``."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from agents.exception_input import Body
from api.auth import PRINCIPAL
from api.errors import ErrorContract
from api.keys import CATALOG, CLOCK, PIPELINE
from api.middleware import request_id_of
from api.routing import RouteTable, read_body, respond
from api.schemas import ErrorEnvelope
from pipeline.next_step import loop_status, newly_done_step, next_playbook_step, why_nothing_ran

routes = RouteTable()
SCHEMA_VERSION: Final = "loop.runNextStep.v1"


class RunNextStepRequest(Body):
    mode: Literal["execute", "dryRun"] = Field("execute", description="dryRun changes nothing")


def _absent_not_null(schema: dict[str, Any]) -> None:
    """Document optional fields as they are sent: absent (not required), never null."""
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [])
        if {"type": "null"} in options and "default" in prop and prop["default"] is None:
            rest = [option for option in options if option != {"type": "null"}]
            del prop["anyOf"], prop["default"]
            prop.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            schema["required"] = [field for field in schema.get("required", []) if field != name]


class OmitsAbsent(BaseModel):
    """Seed 003 leaves an absent optional field out of the JSON rather than sending ``null``; a field
    with any other default is always sent, so the answer's schema marks it required."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, json_schema_extra=_absent_not_null)

    @model_serializer(mode="wrap")
    def _without_absent(  # type: ignore[no-untyped-def]  # pydantic would take a return type as the schema
        self, serialize: SerializerFunctionWrapHandler
    ):
        return {key: value for key, value in serialize(self).items() if value is not None}


class StepExecuted(OmitsAbsent):
    stepNumber: int = Field(ge=1)
    stepType: str
    stepId: str
    status: Literal["pending", "running", "completed", "failed", "skipped"]
    startedAt: datetime
    completedAt: datetime | None = None
    durationMs: int | None = Field(None, ge=0)


class NextStepInfo(OmitsAbsent):
    stepNumber: int = Field(ge=1)
    stepType: str
    stepId: str
    stepName: str
    status: str
    assignee: str | None = None
    estimatedDurationMs: int | None = Field(None, ge=0)


class RunNextStepResponse(OmitsAbsent):
    """What ran (if anything), what comes next, and where the run's loop stands."""

    schemaVersion: Literal["loop.runNextStep.v1"] = SCHEMA_VERSION
    requestId: str
    runId: str
    stepExecuted: StepExecuted | None = None
    nextStep: NextStepInfo | None = None
    loopStatus: Literal["active", "completed", "failed", "paused"]
    message: str | None = None


class RunNextStepError(ErrorEnvelope):
    """Our error envelope with the fields seed 003 adds to every error"""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    schemaVersion: Literal["loop.runNextStep.v1"] = SCHEMA_VERSION
    requestId: str
    timestamp: datetime


LOOP_ERRORS = ErrorContract(SCHEMA_VERSION, RunNextStepError, codes={400: "INVALID_REQUEST"})


@routes.route("POST", "/api/v1/runs/{run_id}/run-next-step", summary="Run (or, with dryRun, preview) a run's next step",
              body=RunNextStepRequest, responses={200: RunNextStepResponse, 409: RunNextStepError},
              permission="runs:advance", tag="playbooks", errors=LOOP_ERRORS)
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
