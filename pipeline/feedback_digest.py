"""The ``feedback_digest`` job: Feedback's records of the runs that ended in a window, aggregated
per playbook and per workflow, stored as one ``feedback.digest`` event on the job's own run, where
the dashboard and the copilot read it.

Runs are streamed a chunk at a time with only the columns the digest needs. The same window over
the same runs gives the same digest: without ``until`` the window ends when the job was launched,
so a job re-run after a restart covers the window it was started for."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from config.rfc3339 import UtcDatetime
from domain.run_state import Feedback
from domain.statuses import TERMINAL
from domain.topics import Topic
from pipeline.jobs import JobContext
from store.digests import FinishedRun, finished_runs

TOP_REASONS = 5
REASON_CHARS = 200
NO_PLAYBOOK = "(none)"
"""The group of runs that ended before a playbook was assigned (failed in triage, say)."""


class DigestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_hours: float = Field(24, gt=0, le=24 * 366, description="How far back from `until` runs count")
    until: UtcDatetime | None = Field(None, description="The window's end (exclusive); default: the job's start")


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class _Group:
    """The running totals of one playbook's or one workflow's runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.outcomes: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.durations: list[float] = []
        self.hitl = 0
        self.steps_total = 0
        self.steps_completed = 0
        self.reasons: Counter[str] = Counter()
        self.confidence: dict[str, list[float]] = {}
        """outcome -> [sum, count] of triage confidence."""

    def add(self, run: FinishedRun, feedback: Feedback) -> None:
        outcome = feedback.outcome or run.status
        self.runs += 1
        self.outcomes[outcome] += 1
        self.statuses[run.status] += 1
        self.durations.append(feedback.duration_seconds)
        if feedback.human_interventions > 0 or feedback.approval_required:
            self.hitl += 1
        self.steps_total += feedback.total_steps
        self.steps_completed += feedback.completed_steps
        if run.error:
            self.reasons[run.error[:REASON_CHARS]] += 1
        if (confidence := feedback.triage_confidence) is not None:
            total = self.confidence.setdefault(outcome, [0.0, 0])
            total[0] += confidence
            total[1] += 1

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.durations)
        return {
            "runs": self.runs,
            "outcomes": dict(sorted(self.outcomes.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "duration_seconds": {
                "p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
                "avg": round(sum(ordered) / len(ordered), 3),
            } if ordered else None,
            "hitl_rate": round(self.hitl / self.runs, 4),
            "steps_completed_ratio": round(self.steps_completed / self.steps_total, 4) if self.steps_total else None,
            "top_failure_reasons": [
                {"reason": reason, "count": n}
                for reason, n in sorted(self.reasons.items(), key=lambda rn: (-rn[1], rn[0]))[:TOP_REASONS]
            ],
            "triage_confidence_by_outcome": {
                outcome: round(total / n, 4) for outcome, (total, n) in sorted(self.confidence.items())
            },
        }


async def feedback_digest(ctx: JobContext) -> dict[str, Any]:
    """Aggregate the window's finished pipeline runs; record the digest; return a short summary."""
    params: DigestParams = ctx.params
    end = (params.until or ctx.run.created_at).astimezone(UTC)
    start = end - timedelta(hours=params.window_hours)
    by_playbook: dict[str, _Group] = {}
    by_workflow: dict[str, _Group] = {}
    total = 0
    db = ctx.db
    async for chunk in finished_runs(db, ctx.run.tenant_id, sorted(TERMINAL), start, end):
        for run in chunk:
            if run.feedback is None:  # a job's run: Feedback never saw it
                continue
            total += 1
            playbook = run.feedback.playbook_id or NO_PLAYBOOK
            by_playbook.setdefault(playbook, _Group()).add(run, run.feedback)
            by_workflow.setdefault(run.workflow_id, _Group()).add(run, run.feedback)
    digest = {
        "window_start": start.isoformat(), "window_end": end.isoformat(), "window_hours": params.window_hours,
        "runs": total,
        "by_playbook": {key: group.to_json() for key, group in sorted(by_playbook.items())},
        "by_workflow": {key: group.to_json() for key, group in sorted(by_workflow.items())},
    }
    ctx.record(Topic.FEEDBACK_DIGEST, digest)
    return {"window_start": digest["window_start"], "window_end": digest["window_end"], "runs": total,
            "playbooks": len(by_playbook)}
