"""Workflows a run can belong to (``config/workflows.yaml``). ``kind`` says which engine entry
point runs it: the four-agent pipeline, or one of the jobs in ``pipeline/jobs``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from config.yaml_source import Declaration, load_model

WorkflowKind = Literal["exception_pipeline", "sla_sweep", "ingest", "feedback_digest"]


class Workflow(Declaration):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    kind: WorkflowKind = Field("exception_pipeline", description="Which engine entry point runs it")


class WorkflowCatalog(Declaration):
    workflows: list[Workflow]

    def get(self, workflow_id: str) -> Workflow | None:
        return next((w for w in self.workflows if w.id == workflow_id), None)


def load_workflows(path: Path) -> WorkflowCatalog:
    return load_model(path, WorkflowCatalog)
