"""Ingest sources (``config/sources.yaml``): where an ``ingest`` job may read exceptions from.

They are declared here, per tenant, and a job names one by id, so an API caller can never make
the service read a file or a URL of its choosing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.yaml_source import Declaration, check_unique_per_tenant, load_model


class _SourceBase(Declaration):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    tenant: str = Field(min_length=1, max_length=64)
    id_field: str = Field(
        "source_id", min_length=1, max_length=64,
        description="The item field (a dotted path) holding the source's own id; items without it are keyed "
        "by a hash of their JSON",
    )
    workflow: str = Field("exception_pipeline", pattern=r"^[a-z][a-z0-9_]*$")
    timeout_seconds: float = Field(10, gt=0, le=300)


class JsonlSource(_SourceBase):
    kind: Literal["jsonl"]
    path: str = Field(
        min_length=1, description="A JSON-lines file, or a directory of them; relative to the data directory"
    )
    pattern: str = Field(
        "*.jsonl", pattern=r"^[^/\\]+$", description="Which files of a directory are read (no path separators)"
    )


class HttpSource(_SourceBase):
    kind: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    items_field: str | None = Field(
        None, min_length=1, description="The key of the answer's object holding the list; unset: the answer is a list"
    )


Source = Annotated[JsonlSource | HttpSource, Field(discriminator="kind")]


class SourceFile(Declaration):
    sources: list[Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique_per_tenant(self) -> SourceFile:
        check_unique_per_tenant(self.sources, "source")
        return self

    def get(self, tenant_id: str, source_id: str) -> JsonlSource | HttpSource | None:
        """The tenant's source; another tenant's is not found, like one that does not exist."""
        return next((s for s in self.sources if s.id == source_id and s.tenant == tenant_id), None)


def load_sources(path: Path) -> SourceFile:
    """The declared sources; a missing file declares none."""
    return load_model(path, SourceFile) if path.exists() else SourceFile()
