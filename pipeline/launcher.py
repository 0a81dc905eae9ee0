"""Starting a run of any workflow, from a manual trigger or a schedule: the four-agent pipeline
for ``exception_pipeline`` workflows, a job for the others. The payload is checked against the
workflow kind's parameters first, so a bad one is refused before anything is recorded."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from agents.exception_input import ExceptionIn
from config.catalog import Catalog
from config.workflows import Workflow
from domain.errors import ValidationFailed, WorkflowNotFound
from pipeline.jobs import JobRunner
from pipeline.run_writer import RunWriter
from pipeline.start_request import StartRequest
from pipeline.validation import validate_json
from store.records import RunRecord

PIPELINE_KIND = "exception_pipeline"


class Launcher:
    def __init__(self, writer: RunWriter, jobs: JobRunner, catalog: Catalog) -> None:
        self.writer, self.jobs, self.catalog = writer, jobs, catalog

    def params_model(self, workflow: Workflow) -> type[BaseModel]:
        return ExceptionIn if workflow.kind == PIPELINE_KIND else self.jobs.kinds[workflow.kind].params

    def workflow(self, workflow_id: str, *, field: str | None = None) -> Workflow:
        """The workflow; unknown is ``WorkflowNotFound``, or with ``field`` a 400 naming it."""
        workflow = self.catalog.workflows.get(workflow_id)
        if workflow is None:
            message = f"no workflow {workflow_id}"
            if field:
                known = ", ".join(w.id for w in self.catalog.workflows.workflows)
                raise ValidationFailed(message, [{"field": field, "message": f"{message}; known: {known}"}])
            raise WorkflowNotFound(message)
        return workflow

    def check(self, workflow: Workflow, payload: dict[str, Any], prefix: str, tenant_id: str) -> dict[str, Any]:
        """The payload as the workflow will get it, or ``ValidationFailed`` naming each field. An
        ingest must name one of the tenant's declared sources (another tenant's is unknown)."""
        raw = orjson.dumps(payload, default=str)  # strictly, as JSON reads: "24" is not hours, 1 not a time
        params = validate_json(self.params_model(workflow), raw, prefix).model_dump(mode="json")
        if workflow.kind == "ingest" and self.catalog.sources.get(tenant_id, params["source"]) is None:
            message = f"no source {params['source']!r} is declared for this tenant in config/sources.yaml"
            raise ValidationFailed(message, [{"field": f"{prefix}.source", "message": message}])
        return params

    async def start(self, workflow: Workflow, request: StartRequest) -> RunRecord:
        """Start a run of ``workflow`` with the request's checked payload; returns once its first
        write is committed."""
        if workflow.kind == PIPELINE_KIND:
            return await self.writer.start_run(request)
        return await self.jobs.launch(request, workflow.kind)

    async def finished(self, run: RunRecord) -> RunRecord:
        """A job's run once it has ended; a pipeline run as its first write left it (its later
        stages are the engine's, and a schedule does not wait for a human)."""
        return (await self.jobs.wait(run.id)) or run
