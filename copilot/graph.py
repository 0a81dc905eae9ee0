"""The ReAct loop as a small LangGraph ``StateGraph`` of our own: a ``model`` node asks the model
(offering the tools), a ``tools`` node runs what it asked for and appends the results as
``role: tool`` messages, and a conditional edge goes back to the tools while the model asks for
them. The last allowed model turn is offered no tools, so the loop always ends with an answer.

The graph is compiled once; what differs per question (the client, the tenant's scope, the
limits) is the run's ``context``, so nothing of one tenant can leak into another's run."""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from openai import AsyncOpenAI

from config.settings import Settings
from copilot.client import chat
from copilot.tools import DEFINITIONS, TenantScope, cut, run_tool
from domain.errors import CopilotUpstreamFailed

SUMMARY_CHARS = 300


@dataclass(frozen=True)
class LoopContext:
    client: AsyncOpenAI
    settings: Settings
    scope: TenantScope
    system_prompt: str


class LoopState(TypedDict):
    messages: Annotated[list[dict[str, Any]], operator.add]
    """The conversation after the system prompt: earlier turns, the question, and this loop's."""
    iterations: int
    tools_used: Annotated[list[dict[str, Any]], operator.add]
    limit_reached: bool


LIMIT_NOTE = ("You have reached the limit of steps for this question. Answer now from the tool results above, "
              "and say that the answer may be incomplete.")


async def model_node(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    ctx = runtime.context
    last_turn = state["iterations"] + 1 >= ctx.settings.copilot_max_iterations
    messages = [{"role": "system", "content": ctx.system_prompt}, *state["messages"]]
    request: dict[str, Any] = {"messages": messages}
    if last_turn:
        messages.append({"role": "system", "content": LIMIT_NOTE})
    else:
        request["tools"] = DEFINITIONS
    completion = await chat(ctx.client, ctx.settings, **request)
    try:  # the SDK does not validate answers: an endpoint's odd body must not end as a 500
        reply = completion.choices[0].message
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
        if reply.tool_calls and not last_turn:
            message["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.function.name, "arguments": call.function.arguments}}
                for call in reply.tool_calls
            ]
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise CopilotUpstreamFailed("the model endpoint answered something that is not a chat completion",
                             {"upstream_status": 200}) from exc
    return {"messages": [message], "iterations": state["iterations"] + 1,
            "limit_reached": last_turn and state["iterations"] > 0}


async def tools_node(state: LoopState, runtime: Runtime[LoopContext]) -> dict[str, Any]:
    ctx = runtime.context
    results, used = [], []
    for call in state["messages"][-1]["tool_calls"]:
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        started = time.perf_counter()
        output = await run_tool(ctx.scope, name, arguments, ctx.settings.copilot_tool_output_chars)
        elapsed_ms = (time.perf_counter() - started) * 1000
        results.append({"role": "tool", "tool_call_id": call["id"], "content": output})
        used.append({"tool_name": name, "input_summary": cut(arguments or "{}", SUMMARY_CHARS),
                     "output_summary": cut(output, SUMMARY_CHARS), "elapsed_ms": round(elapsed_ms, 3)})
    return {"messages": results, "tools_used": used}


def after_model(state: LoopState) -> str:
    return "tools" if state["messages"][-1].get("tool_calls") else END


def build_graph() -> Any:
    graph = StateGraph(LoopState, context_schema=LoopContext)
    graph.add_node("model", model_node)
    graph.add_node("tools", tools_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", after_model, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


GRAPH = build_graph()
