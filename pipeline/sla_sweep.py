"""STUB: being written."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pipeline.jobs import JobContext


class SlaSweepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def sla_sweep(ctx: JobContext) -> dict[str, Any]:
    raise NotImplementedError
