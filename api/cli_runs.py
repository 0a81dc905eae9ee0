"""``autopilot runs status RUN_ID``: where a run stands, read from a running server's API: its status
and stage, its playbook's steps, and, when it waits for a human, who may decide and by when."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from api.cli_http import CliFailure, add_server_options, guarded, request, server_of
from api.schemas import PauseInfo, PlaybookProgress, RunDetail
from config.settings import Settings


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _progress(progress: PlaybookProgress) -> list[str]:
    line = f"progress  {progress.completed_steps}/{progress.total_steps} steps completed"
    current = next((s for s in progress.steps if s.id == progress.current_step), None)
    if current is not None:
        line += f"; current step {current.id} ({current.status})"
    width = max((len(s.id) for s in progress.steps), default=0)
    steps = []
    for step in progress.steps:
        who = f" [{step.assignee}]" if step.assignee else ""
        steps.append(f"  {step.sequence:>2}. {step.id:<{width}}  {step.status:<18} {step.name}{who}")
    return [line, *steps]


def _pause(pause: PauseInfo, paused_step: str | None) -> list[str]:
    at = f" (step {paused_step})" if paused_step and paused_step != pause.gate else ""
    lines = [
        f"paused    at gate {pause.gate}{at}: {pause.reason}",
        f"  since     {_when(pause.requested_at)}",
        f"  expires   {_when(pause.expires_at)}",
        f"  deciders  {', '.join(pause.deciders) or 'none listed'}",
        f"  approvals {len(pause.approvals)} of {pause.approvals_required}"
        + (f": {', '.join(str(a.get('by')) for a in pause.approvals)}" if pause.approvals else ""),
    ]
    if pause.escalated:
        lines.append(f"  escalated to {pause.escalated.get('queue')} at {pause.escalated.get('at')}")
    return lines


def report(run: RunDetail) -> list[str]:
    """The lines ``runs status`` prints: a person's view of the RunDetail."""
    lines = [f"run       {run.id}", f"workflow  {run.workflow_id}", f"status    {run.status} (stage {run.stage})"]
    progress = run.playbook_progress
    if progress is not None:
        lines.append(f"playbook  {progress.playbook_id}@{progress.playbook_version} ({progress.mode}): {progress.name}")
        lines += _progress(progress)
    elif run.playbook_id:
        lines.append(f"playbook  {run.playbook_id}@{run.playbook_version}")
    else:
        lines.append("playbook  none assigned")
    if run.pause is not None:
        lines += _pause(run.pause, run.paused_step)
    if run.error:
        lines.append(f"error     {run.error}")
    return lines


def status(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Settings]) -> int:
    server = server_of(args, settings_of)
    answer = request(server, "GET", f"/api/v1/runs/{quote(args.run_id, safe='')}")
    if answer.status == 404:
        raise CliFailure(f"no run {args.run_id}")
    if not answer.ok:
        raise answer.failure()
    if args.json:
        print(json.dumps(answer.body, indent=2))
    else:
        print("\n".join(report(RunDetail.model_validate(answer.body))))
    return 0


def add_commands(commands: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    group = commands.add_parser("runs", help="read runs from a running server")
    verbs = group.add_subparsers(dest="runs_command", required=True)
    one = verbs.add_parser("status", help="a run's status, stage, step progress and pause")
    one.add_argument("run_id")
    add_server_options(one)
    one.add_argument("--json", action="store_true", help="print the server's RunDetail")
    one.set_defaults(func=guarded("runs status", lambda a: status(a, settings_of)))
