"""Tools that ``call_tool`` steps may call (``config/tools.yaml``): HTTP endpoints, or Python
callables registered under the ``autopilot.tools`` entry-point group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from config.yaml_source import Declaration, load_model

ENTRY_POINT_GROUP = "autopilot.tools"


class _ToolBase(Declaration):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    timeout_seconds: float = Field(10, gt=0, le=300)
    retries: int = Field(2, ge=0, le=10, description="Further attempts after a failed one")
    backoff_seconds: float = Field(0.5, ge=0, le=60, description="First wait; doubles each retry")
    idempotent: bool = Field(
        False, description="Safe to call again with the same Idempotency-Key after a crash mid-call"
    )


class HttpTool(_ToolBase):
    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)


class PythonTool(_ToolBase):
    kind: Literal["python"]
    entry_point: str = Field(description=f"Name of an entry point in the '{ENTRY_POINT_GROUP}' group")


Tool = Annotated[HttpTool | PythonTool, Field(discriminator="kind")]


class ToolRegistry(Declaration):
    tools: list[Tool] = Field(default_factory=list)

    def get(self, name: str) -> HttpTool | PythonTool | None:
        return next((t for t in self.tools if t.name == name), None)


def load_tools(path: Path) -> ToolRegistry:
    return load_model(path, ToolRegistry) if path.exists() else ToolRegistry()
