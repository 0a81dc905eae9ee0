"""``GET /api/v1/audit``: what people and the system did in the caller's tenant: ingests,
triggers, approvals and rejections, step completions and overrides, recalculations."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from agents.exception_input import Body, UtcDatetime
from api.auth import PRINCIPAL
from api.keys import EVENTS
from api.routing import RouteTable, read_query, respond
from api.schemas import EventOut
from api.views import event_out

routes = RouteTable()
TOPIC_FILTER = r"^[^*#\x00]*(\.[*#])?$"
"""What ``_exact_or_prefix`` takes, for the document (the validator's own message is kept)."""


class AuditQuery(Body):
    actor: str | None = Field(None, max_length=160, examples=["user:ann"])
    run_id: str | None = Field(None, max_length=40)
    topic: Annotated[str, Field(max_length=64, json_schema_extra={"pattern": TOPIC_FILTER})] | None = Field(
        None, description="A topic, or a prefix pattern like 'playbook.*': '*' or '#' only as the last segment")
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    cursor: int | None = Field(None, ge=1, le=2**63 - 1, description="next_cursor of the previous page")
    limit: int = Field(100, ge=1, le=500)

    @field_validator("topic")
    @classmethod
    def _exact_or_prefix(cls, value: str | None) -> str | None:
        if value is not None:
            stem = value[:-2] if value.endswith((".*", ".#")) else value
            if "*" in stem or "#" in stem:
                raise ValueError("give a topic, or a prefix ending in .* or .#")
        return value


class AuditPage(BaseModel):
    """Audit events, newest first."""

    items: list[EventOut]
    next_cursor: int | None


@routes.route("GET", "/api/v1/audit", summary="The tenant's audit trail: who did what, when and why",
              query=AuditQuery, responses={200: AuditPage}, permission="audit:read", tag="audit")
async def list_audit(request: web.Request) -> web.Response:
    query = read_query(request, AuditQuery)
    prefix = query.topic[:-1] if query.topic and query.topic.endswith((".*", ".#")) else None
    found = await request.app[EVENTS].audit(
        request[PRINCIPAL].tenant, actor=query.actor, run_id=query.run_id,
        topic=None if prefix else query.topic, topic_prefix=prefix,
        since=query.since, until=query.until, before_id=query.cursor, limit=query.limit + 1,
    )
    page = found[: query.limit]
    return respond(AuditPage(
        items=[event_out(e) for e in page], next_cursor=page[-1].id if len(found) > query.limit else None
    ))
