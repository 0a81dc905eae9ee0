"""Making a run's claimed tool calls, outside any transaction, once the claim is committed.

A claim this process made is its own to make. A claim it did not make was left by a process
that stopped mid-call: the call is made again only if the tool is declared idempotent;
otherwise its outcome is unknown and the step fails, so no action runs twice."""

from __future__ import annotations

from collections.abc import Iterable

from agents.tool_client import ToolClient, ToolFailed
from config.catalog import Catalog
from pipeline.clock import Clock
from pipeline.tool_results import record_call
from pipeline.transition import Transition

OUTCOME_UNKNOWN = "the service stopped during this call; its outcome is unknown, so it was not repeated"


class ToolCalls:
    def __init__(self, catalog: Catalog, tools: ToolClient, clock: Clock) -> None:
        self.catalog, self.tools, self.clock = catalog, tools, clock
        self._claims: set[tuple[str, str]] = set()
        """(run, step) calls this process claimed and has not made yet."""

    def claimed(self, run_id: str, step_ids: Iterable[str]) -> None:
        """The calls a committed write of this process claimed."""
        for step_id in step_ids:
            self._claims.add((run_id, step_id))

    async def make(self, t: Transition) -> None:
        """Make the run's claimed calls and record each answer or failure on ``t``."""
        run = t.run
        playbook = self.catalog.playbook(run.state.playbook_key or "")
        if playbook is None:
            return
        for step_id in list(run.state.pending_calls):
            record = run.state.steps[step_id]
            tool = self.catalog.tools.get(record.tool or "")
            ours = (run.id, step_id) in self._claims
            self._claims.discard((run.id, step_id))
            if not ours and not (tool and tool.idempotent):
                record_call(t, playbook, step_id, None, OUTCOME_UNKNOWN, 1)
                continue
            try:
                answer, attempts = await self.tools.call(
                    record.tool or "", record.input or {}, idempotency_key=f"{run.id}:{step_id}"
                )
            except ToolFailed as exc:
                t.now = self.clock()
                record_call(t, playbook, step_id, None, str(exc), exc.attempts)
            else:
                t.now = self.clock()
                record_call(t, playbook, step_id, answer, None, attempts)

    async def close(self) -> None:
        await self.tools.close()
