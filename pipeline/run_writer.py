"""What job workflows and the launcher may do to runs: start one, commit a new run's write,
change one with a version-checked write. ``PipelineEngine`` implements it; a job never sees the
engine's workers, queue or claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

from pipeline.start_request import IdempotencySpec, StartRequest
from pipeline.transition import Transition
from store.records import RunRecord, RunWrite
from store.runs import RunRepository

T = TypeVar("T")


@runtime_checkable
class RunWriter(Protocol):
    runs: RunRepository
    """Tenant-scoped reads of runs."""

    def new_run_id(self) -> str: ...

    async def start_run(self, request: StartRequest) -> RunRecord:
        """A pipeline run, advanced through its local stages and committed in one write."""
        ...

    async def submit(self, write: RunWrite, claimed: frozenset[str] = frozenset()) -> None:
        """Commit a write built by hand (a job's own run)."""
        ...

    async def change_run(
        self,
        tenant_id: str,
        run_id: str,
        change: Callable[[Transition], T],
        *,
        request_id: str | None = None,
        idempotency: IdempotencySpec | None = None,
        write_if: Callable[[T], bool] = ...,
    ) -> tuple[RunRecord, T]:
        """Apply ``change`` to the run as it is now and commit it, retrying a lost race."""
        ...
