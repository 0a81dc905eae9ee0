"""The copilot over HTTP: ask a question about the tenant's runs and get the answer with the
tools used, at once or as server-sent events while it works. The tenant comes from the token
and is bound into the tools; nothing in the body can name another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from agents.exception_input import Body
from api.auth import PRINCIPAL
from api.errors import envelope, failure_of
from api.event_docs import SseMessages
from api.keys import CATALOG, CLOCK, DB, SETTINGS
from api.middleware import request_id_of
from api.routing import RouteTable, read_body, respond
from api.schemas import ErrorEnvelope
from copilot.client import openai_client
from copilot.service import Answer, Copilot
from domain import errors

log = structlog.get_logger(__name__)
routes = RouteTable()
COPILOT = web.AppKey("copilot", Copilot)
EVENT_STREAM = "text/event-stream"


class CopilotQuery(Body):
    """A question about the tenant's runs; ``thread_id`` continues an earlier conversation."""

    query: str = Field(min_length=3, max_length=2000, description="e.g. 'Why did run run_01j… pause?'")
    thread_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$",
                                  description="From an earlier answer: the model sees that conversation")


class CopilotToolCall(BaseModel):
    """One tool the copilot ran while answering."""

    tool_name: str
    input_summary: str = ""
    output_summary: str = ""


class CopilotResponse(BaseModel):
    reply: str = Field(description="The answer, in plain language")
    tools_used: list[CopilotToolCall] = Field(default_factory=list)
    iterations: int = Field(0, description="Model turns taken")
    thread_id: str = Field(description="Pass it back as thread_id to ask a follow-up")
    limit_reached: bool = Field(False, description="The answer stopped at copilot_max_iterations")


class CopilotStreamError(ErrorEnvelope):
    """The answer failed after streaming had begun"""

    status: int = Field(description="The status a plain answer would have had (502, 504, ...)")


class CopilotMessages(SseMessages):
    """What ``POST /api/v1/copilot/ask/stream`` sends."""

    framing = (
        "Server-sent events without ids: a `tool_call` message for each tool the copilot runs, then one `answer`, "
        "or one `error` if it fails once streaming has begun; then the stream ends. A failure before the first "
        "message (copilot not configured, unknown thread, the first model call) answers plainly with its status."
    )
    events = {"tool_call": CopilotToolCall, "answer": CopilotResponse, "error": CopilotStreamError}


COPILOT_ERRORS: dict[int, type[BaseModel] | None] = {404: ErrorEnvelope, 502: ErrorEnvelope, 503: ErrorEnvelope,
                                                     504: ErrorEnvelope}
"""An unknown ``thread_id``; the model endpoint failing, not configured, or too slow."""


def response_of(answer: Answer) -> CopilotResponse:
    return CopilotResponse(
        reply=answer.reply, tools_used=[CopilotToolCall(**t) for t in answer.tools_used],
        iterations=answer.iterations, thread_id=answer.thread_id, limit_reached=answer.limit_reached,
    )


async def copilot_context(app: web.Application) -> AsyncIterator[None]:
    """The copilot with a client for the configured endpoint (none configured: it answers 503)."""
    client = openai_client(app[SETTINGS])
    app[COPILOT] = Copilot(app[SETTINGS], app[DB], app[CATALOG], client=client, clock=app[CLOCK])
    yield
    if client is not None:
        await client.close()


@routes.route("POST", "/api/v1/copilot/ask", summary="Ask the copilot about runs, events, approvals, playbooks",
              body=CopilotQuery, responses={200: CopilotResponse, **COPILOT_ERRORS}, permission="runs:read",
              tag="copilot")
async def ask(request: web.Request) -> web.Response:
    query, _ = await read_body(request, CopilotQuery)
    answer = await request.app[COPILOT].ask(request[PRINCIPAL].tenant, query.query, query.thread_id)
    return respond(response_of(answer))


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@routes.route("POST", "/api/v1/copilot/ask/stream", summary="Ask the copilot; tool calls and the answer arrive as "
              "server-sent events (tool_call, answer, error)", body=CopilotQuery,
              responses={200: CopilotMessages, **COPILOT_ERRORS}, permission="runs:read", tag="copilot",
              media_type=EVENT_STREAM)
async def ask_stream(request: web.Request) -> web.StreamResponse:
    query, _ = await read_body(request, CopilotQuery)
    steps = request.app[COPILOT].stream(request[PRINCIPAL].tenant, query.query, query.thread_id)
    # failures before the first step (not configured, unknown thread, first model call) answer plainly
    first = await anext(steps)
    response = web.StreamResponse(headers={"Content-Type": EVENT_STREAM, "Cache-Control": "no-cache"})
    await response.prepare(request)
    step: tuple[str, Any] | None = first
    try:
        while step is not None:
            kind, value = step
            if kind == "answer":
                await response.write(_sse("answer", response_of(value).model_dump(mode="json")))
            else:
                await response.write(_sse("tool_call", CopilotToolCall(**value).model_dump(mode="json")))
            step = await anext(steps, None)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:  # the answer is under way: an error event, and the end of the body, not a hang
        if not isinstance(exc, errors.AutopilotError):
            log.exception("copilot stream failed", path=request.path)
        failure = failure_of(exc)
        await response.write(_sse("error", {**envelope(failure, request_id_of(request)), "status": failure.status}))
    await response.write_eof()
    return response
