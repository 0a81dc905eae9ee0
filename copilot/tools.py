"""The copilot's tools: read-only, and bound to the caller's tenant.

The tenant lives in the ``TenantScope`` a tool is run with, never in its arguments: argument
models forbid unknown fields, so a model told by some log text to pass "tenant_id" gets an
error back, and every read below passes ``scope.tenant_id`` to a repository that filters on
it. Outputs are JSON wrapped as ``{"untrusted_data": ...}`` and cut to a size with a note."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog
from domain.state_codec import as_payload, state_to_builtins
from eventbus.topics import topic_matches
from store.events import EventRepository
from store.insights import run_statistics, search_events
from store.records import EventRecord, RunRecord
from store.runs import RunRepository
from store.schedules import ScheduleRepository

STATUSES = Literal["received", "triaged", "policy_evaluated", "paused", "resumed", "resolving", "waiting_for_input",
                   "resolved", "completed", "failed", "rejected", "cancelled", "running"]


@dataclass(frozen=True)
class TenantScope:
    """What a tool may read: one tenant's data, through repositories that filter on it."""

    tenant_id: str
    engine: AsyncEngine
    runs: RunRepository
    events: EventRepository
    schedules: ScheduleRepository
    catalog: Catalog
    clock: Callable[[], datetime]

    @classmethod
    def of(cls, tenant_id: str, engine: AsyncEngine, catalog: Catalog, clock: Callable[[], datetime]) -> TenantScope:
        return cls(tenant_id, engine, RunRepository(engine), EventRepository(engine), ScheduleRepository(engine),
                   catalog, clock)


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _in_utc(cls, value: Any) -> Any:
        """Times are read in UTC: one that has none (0001-01-01T00:00+01:00) is a bad argument,
        not an OverflowError from the database driver."""
        if isinstance(value, datetime):
            try:
                return value.astimezone(UTC)
            except OverflowError as exc:
                raise ValueError("the time is out of range") from exc
        return value


class ListRunsArgs(Args):
    status: list[STATUSES] = Field(default_factory=list, max_length=13, description="Only runs in these statuses")
    workflow_id: str | None = Field(None, max_length=64)
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    limit: int = Field(20, ge=1, le=50)


class RunArgs(Args):
    run_id: str = Field(max_length=64)


class RunEventsArgs(Args):
    run_id: str = Field(max_length=64)
    topic: str | None = Field(None, max_length=64, description="Topic pattern: * one segment, # any, e.g. run.*")
    limit: int = Field(100, ge=1, le=200)


class SearchEventsArgs(Args):
    text: str = Field(min_length=2, max_length=200, description="Case-insensitive text in the topic or payload")
    since: AwareDatetime | None = Field(None, description="Default: 7 days ago")
    until: AwareDatetime | None = None
    limit: int = Field(20, ge=1, le=50)


class PendingArgs(Args):
    limit: int = Field(20, ge=1, le=50)


class PlaybookArgs(Args):
    playbook_id: str = Field(max_length=80, description="id, or id@version")


class StatsArgs(Args):
    window_hours: float = Field(24, gt=0, le=24 * 90, description="How far back from now runs count")
    group_by: Literal["workflow", "playbook"] = "workflow"


class NoArgs(Args):
    pass


def _run_summary(run: RunRecord) -> dict[str, Any]:
    state = run.state
    pause, policy = state.pause, state.policy
    return {
        "id": run.id, "workflow_id": run.workflow_id, "status": run.status,
        "domain": run.exception.get("domain"), "type": run.exception.get("type"), "code": run.exception.get("code"),
        "amount": run.exception.get("amount"), "currency": run.exception.get("currency"),
        "severity": state.current_severity,
        "playbook_id": policy.playbook_id if policy else None,
        "playbook_version": policy.playbook_version if policy else None,
        "created_at": run.created_at, "updated_at": run.updated_at,
        "error": state.error,
        "pause": {"gate": pause.gate, "reason": pause.reason} if pause else None,
    }


def _event(event: EventRecord) -> dict[str, Any]:
    return {"run_id": event.run_id, "seq": event.seq, "topic": event.topic, "actor": event.actor,
            "created_at": event.created_at, "payload": event.payload}


async def list_runs(scope: TenantScope, args: ListRunsArgs) -> Any:
    found = await scope.runs.list_for(
        scope.tenant_id, statuses=list(args.status), workflow_id=args.workflow_id,
        created_after=args.created_after, created_before=args.created_before, limit=args.limit,
    )
    return {"runs": [_run_summary(r) for r in found], "count": len(found), "newest_first": True}


async def get_run(scope: TenantScope, args: RunArgs) -> Any:
    run = await scope.runs.get(scope.tenant_id, args.run_id)
    if run is None:
        return {"error": f"no run {args.run_id}"}
    keep = ("triage", "policy", "pause", "steps", "feedback", "decisions", "sla", "error", "waiting_steps")
    state = state_to_builtins(run.state)
    return {**_run_summary(run), "trigger_type": run.trigger_type, "trigger_ref": run.trigger_ref,
            "started_by": run.started_by, "exception": run.exception,
            **{k: state[k] for k in keep if k in state}}


async def get_run_events(scope: TenantScope, args: RunEventsArgs) -> Any:
    if await scope.runs.get(scope.tenant_id, args.run_id) is None:
        return {"error": f"no run {args.run_id}"}
    found = await scope.events.for_run(scope.tenant_id, args.run_id, limit=1000)
    if args.topic:
        found = [e for e in found if topic_matches(args.topic, e.topic)]
    return {"run_id": args.run_id, "events": [_event(e) for e in found[: args.limit]],
            "more": len(found) > args.limit}


async def search_log(scope: TenantScope, args: SearchEventsArgs) -> Any:
    since = args.since or scope.clock() - timedelta(days=7)
    found, partial = await search_events(scope.engine, scope.tenant_id, args.text, since=since, until=args.until,
                                         limit=args.limit)
    note = "only the newest 5000 events of the range were searched; narrow since/until" if partial else None
    return {"since": since, "until": args.until, "events": [_event(e) for e in found], "note": note}


async def list_pending_approvals(scope: TenantScope, args: PendingArgs) -> Any:
    found = await scope.runs.list_for(scope.tenant_id, statuses=["paused"], limit=args.limit)
    return {"paused_runs": [{**_run_summary(r), "pause": as_payload(r.state.pause) if r.state.pause else None}
                            for r in found]}


async def get_playbook(scope: TenantScope, args: PlaybookArgs) -> Any:
    playbook = scope.catalog.playbook(args.playbook_id)
    if playbook is None:
        return {"error": f"no playbook {args.playbook_id}"}
    return playbook.model_dump(mode="json", exclude_defaults=True)


async def workflow_statistics(scope: TenantScope, args: StatsArgs) -> Any:
    until = scope.clock()
    return await run_statistics(scope.engine, scope.tenant_id, until - timedelta(hours=args.window_hours), until,
                                group_by=args.group_by)


async def list_schedules(scope: TenantScope, args: NoArgs) -> Any:
    return {"schedules": [
        {"id": s.id, "workflow_id": s.workflow_id, "paused": s.paused, "paused_reason": s.paused_reason,
         "trigger": s.settings.get("trigger"), "next_fire_at": s.next_fire_at, "last_fire_at": s.last_fire_at,
         "last_run_id": s.last_run_id, "consecutive_failures": s.consecutive_failures}
        for s in await scope.schedules.list_for(scope.tenant_id)
    ]}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args]
    run: Callable[[TenantScope, Any], Awaitable[Any]]

    def definition(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry: the arguments' JSON Schema from the pydantic model."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": schema}}


TOOLS = {tool.name: tool for tool in (
    Tool("list_runs", "List runs, newest first, filtered by status, workflow and creation time.",
         ListRunsArgs, list_runs),
    Tool("get_run", "One run: its exception, triage, policy decision, pause, playbook steps, feedback, error.",
         RunArgs, get_run),
    Tool("get_run_events", "A run's event log in order, optionally filtered by a topic pattern.",
         RunEventsArgs, get_run_events),
    Tool("search_events", "Search all runs' events for text, newest first, within a time range.",
         SearchEventsArgs, search_log),
    Tool("list_pending_approvals", "Paused runs waiting for a human decision, with gate and reason.",
         PendingArgs, list_pending_approvals),
    Tool("get_playbook", "A playbook's definition: match conditions and ordered steps.", PlaybookArgs, get_playbook),
    Tool("workflow_statistics", "Per workflow or playbook over the last hours: counts by status, failure "
         "reasons, durations, HITL (approval) rate.", StatsArgs, workflow_statistics),
    Tool("list_schedules", "The schedules that start workflows, with their next fire time.", NoArgs, list_schedules),
)}
DEFINITIONS = [tool.definition() for tool in TOOLS.values()]


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, with a note saying what was cut."""
    if len(text) <= limit:
        return text
    note = f" [cut: output was {len(text)} characters, showing the first {limit}; narrow the query to see more]"
    return text[: max(0, limit - len(note))] + note


async def run_tool(scope: TenantScope, name: str, arguments: str, limit: int) -> str:
    """Run one requested tool and give its output as the text of a ``role: tool`` message. Bad
    arguments and unknown tools are answered as errors for the model to correct, not raised."""
    tool = TOOLS.get(name)
    if tool is None:
        return dumps({"error": f"no tool named {name!r}; use one of {sorted(TOOLS)}"})
    try:
        args = tool.args.model_validate_json(arguments or "{}")
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()]
        return dumps({"error": "invalid arguments", "problems": problems})
    return cut(dumps({"untrusted_data": await tool.run(scope, args)}), limit)
