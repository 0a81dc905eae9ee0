"""STUB: being written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.jobs import JobContext


class IngestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def ingest(ctx: JobContext) -> dict[str, Any]:
    raise NotImplementedError
