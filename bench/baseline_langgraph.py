"""LangGraph baseline: throughput of our five-node pipeline built on LangGraph.

Builds the same shape as the product pipeline (triage -> policy ->
approval_gate -> resolution -> feedback) as a LangGraph ``StateGraph`` with an
``AsyncSqliteSaver`` checkpointer. Every ``pause_every``-th exception carries a
large amount, so ``approval_gate`` calls ``interrupt(...)``; that run is then
resumed with ``Command(resume={"decision": "approve"})`` on the same thread.
Node bodies do small deterministic rules-engine work (no sleeping), so the
figure is dominated by framework and checkpoint overhead -- the baseline our
own pipeline is compared against.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

APPROVAL_THRESHOLD = 10_000.0
SEVERITY = {("payments", "timeout"): "high", ("payments", "mismatch"): "critical",
            ("orders", "timeout"): "medium", ("orders", "mismatch"): "high"}
PLAYBOOKS = {"critical": "pb-escalate", "high": "pb-retry-then-page",
             "medium": "pb-retry", "low": "pb-log"}


class PipelineState(TypedDict, total=False):
    exception_id: str
    domain: str
    type: str
    amount: float
    severity: str
    confidence: float
    playbook_id: str
    needs_approval: bool
    approval: dict[str, Any]
    steps: list[dict[str, Any]]
    feedback: dict[str, Any]


def triage(state: PipelineState) -> PipelineState:
    severity = SEVERITY.get((state["domain"], state["type"]), "low")
    confidence = 0.95 if severity != "low" else 0.6
    if state["amount"] > APPROVAL_THRESHOLD:
        confidence -= 0.1
    return {"severity": severity, "confidence": round(confidence, 2)}


def policy(state: PipelineState) -> PipelineState:
    playbook = PLAYBOOKS[state["severity"]]
    return {"playbook_id": playbook, "needs_approval": state["amount"] > APPROVAL_THRESHOLD}


def approval_gate(state: PipelineState) -> PipelineState:
    if not state["needs_approval"]:
        return {"approval": {"decision": "auto", "by": "policy"}}
    answer = interrupt({"exception_id": state["exception_id"], "amount": state["amount"],
                        "playbook_id": state["playbook_id"]})
    return {"approval": {"decision": answer["decision"], "by": "human"}}


def resolution(state: PipelineState) -> PipelineState:
    if state["approval"]["decision"] not in ("auto", "approve"):
        return {"steps": []}
    steps = [{"step": i, "action": f"{state['playbook_id']}:{name}", "ok": True}
             for i, name in enumerate(("diagnose", "remediate", "verify"), start=1)]
    return {"steps": steps}


def feedback(state: PipelineState) -> PipelineState:
    steps = state["steps"]
    ok = sum(1 for s in steps if s["ok"])
    return {"feedback": {"resolved": bool(steps) and ok == len(steps),
                         "success_rate": ok / len(steps) if steps else 0.0,
                         "confidence": state["confidence"],
                         "human_touch": state["approval"]["by"] == "human"}}


def build_graph() -> StateGraph:
    graph = StateGraph(PipelineState)
    names = ["triage", "policy", "approval_gate", "resolution", "feedback"]
    for name, fn in zip(names, (triage, policy, approval_gate, resolution, feedback), strict=True):
        graph.add_node(name, fn)
    graph.add_edge(START, names[0])
    for a, b in zip(names[:-1], names[1:], strict=True):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph


def make_exception(i: int, pause_every: int) -> PipelineState:
    big = pause_every > 0 and i % pause_every == 0
    return {"exception_id": f"exc-{i}", "domain": ("payments", "orders")[i % 2],
            "type": ("timeout", "mismatch", "other")[i % 3],
            "amount": 50_000.0 if big else float(10 + i % 900)}


async def run_langgraph_baseline(n: int, db_path: str, concurrency: int = 64,
                                 pause_every: int = 10) -> dict[str, Any]:
    """Push ``n`` exceptions through the graph; resume every interrupted run."""
    async with AsyncSqliteSaver.from_conn_string(db_path) as saver:
        await saver.setup()
        app = build_graph().compile(checkpointer=saver)
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> bool:
            thread = f"bench-{i}"
            async with sem:
                result = await app.ainvoke(make_exception(i, pause_every), {"configurable": {"thread_id": thread}})
                paused = "__interrupt__" in result
                if paused:
                    result = await app.ainvoke(Command(resume={"decision": "approve"}),
                                               {"configurable": {"thread_id": thread}})
            if "feedback" not in result:
                raise RuntimeError(f"run {i} did not reach feedback: {sorted(result)}")
            return paused

        start = time.perf_counter()
        paused_flags = await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.perf_counter() - start
    return {"runs": n, "paused_and_resumed": sum(paused_flags), "seconds": round(seconds, 3),
            "runs_per_s": round(n / seconds, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--db", default="/tmp/bench_langgraph.sqlite")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pause-every", type=int, default=10)
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):  # start from an empty database each time
        Path(args.db + suffix).unlink(missing_ok=True)
    print(json.dumps(asyncio.run(run_langgraph_baseline(
        args.n, args.db, args.concurrency, args.pause_every))))
