"""HTTP benchmark: the real server's routes beside a bare aiohttp handler and the in-process engine.

What is measured, in one invocation (issue 14), each load by ``wrk -t1`` with ``bench/http_load.lua``
for ``--duration`` seconds after ``--warmup`` seconds of the same load:

1. **The engine in process**: ``bench.pipeline_throughput``'s ``run_ours`` (its own SQLite file,
   256 in flight, no LangGraph baseline) with ``--in-process-n`` runs: ``in_process_runs_per_s``.
2. **A bare aiohttp handler**, a process of its own on this machine (``bench/http_bare.py``): any
   request to ``/bare?bytes=N`` reads the body and answers N bytes. Every route below is compared
   with it at the same connections and the same answer size, measured right after the route.
3. **Ingest**: the real server (``python -m api.cli --data-dir <tmp> serve``, as ``autopilot
   serve`` runs it: SQLite, scheduler off, log level WARNING) on a fresh data directory;
   ``POST /api/v1/exceptions`` with a unique ``source_id`` each, one in ten over acme's approval
   amount, so it pauses. At 64 connections: runs that reached a paused or ended status inside the
   window, per second, counted in the database (``ingest_runs_per_s``; ``ingest_ratio`` is that over
   the in-process figure), and wrk's p50/p99. At 1 connection: the server's CPU per request,
   user + system time from ``/proc/<pid>/stat`` over the window divided by the requests.
4. **Reads**, with ``--runs`` runs stored, seeded by ``bench/http_seed.py``. Real runs are made
   by the engine in process (a template of ``--template-runs``: one in ten paused, half of those
   approved and completed, the rest left awaiting approval), then copied with ``sqlite3`` into the
   server's fresh database under new ids spread over the past 30 days (ids, times and every
   mention of the run id in the JSON rewritten), before the server starts. Then at 64 connections:
   ``GET /api/v1/runs?limit=50``, ``GET /api/v1/runs/{id}`` and ``.../events`` (ids drawn at random
   from 2,000 spread over the table) and ``GET /api/v1/runs/pending-action``, each with its ratio
   to the bare handler at the same answer size (for ``{id}``, the mean of 20 answers). First the
   list and pending-action routes are answered once by the app in this process, and each SELECT
   they send is run again under SQLite's ``EXPLAIN QUERY PLAN``: the plans are printed.
5. **LLM triage**: the server with ``AUTOPILOT_TRIAGE_LLM_ENABLED=true`` pointed at the bare
   process's ``/v1/chat/completions``, which answers every call after ``--model-delay`` seconds
   (200 ms) with a valid classification; exceptions no triage rule knows (so each one asks the
   model), 256 connections: runs paused or ended inside the window per second, counted in the
   database (``llm_triage_runs_per_s``), against 256 / 0.2 s = 1,280/s.

Each phase prints a line to stderr; the last line on stdout is one JSON object with every figure,
the targets of issue 14 and whether each is met. The server, the bare handler, wrk and this
script share the machine's cores; compare ratios, not absolutes.

Run: ``python -m bench.http [--duration S] [--warmup S] [--runs N] [--skip-reads] [--skip-llm]
[--keep]`` from the repository root; needs ``wrk`` (Debian: ``apt-get install wrk``; installed when
run as root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine, event

from api.app import create_app
from bench.http_bare import start_bare
from bench.http_seed import database_url, say, seed
from bench.pipeline_throughput import TENANT, make_exception, run_ours
from bench.scaleout import count_done, cpu_seconds
from config.settings import Settings
from store.database import open_engine
from tests.e2e.cluster import consecutive_free_ports
from tests.e2e.server import SECRET, ServerProcess, token

LUA = Path(__file__).resolve().with_name("http_load.lua")
SAMPLE_IDS = 2000
READS = {  # name: (Lua mode, path)
    "list": ("get", "/api/v1/runs?limit=50"),
    "get_run": ("ids", "/api/v1/runs/%s"),
    "events": ("ids", "/api/v1/runs/%s/events"),
    "pending": ("get", "/api/v1/runs/pending-action"),
}
TARGETS = {  # figure: (comparison, bound); the LLM's bound is set from the run's own figures
    "ingest_ratio": (">=", 0.75), "ingest_p99_ms": ("<", 50.0), "ingest_cpu_ms_c1": ("<", 2.0),
    "list_ratio": (">=", 0.30), "list_p99_ms": ("<", 25.0), "get_run_ratio": (">=", 0.40),
    "events_ratio": (">=", 0.40), "pending_ratio": (">=", 0.40),
}


# --- loads ---------------------------------------------------------------------------------

async def wrk(base: str, connections: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    """One wrk run; its Lua ``done()`` summary."""
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(LUA), base, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    for line in out.decode().splitlines():
        if line.startswith("HTTPBENCH "):
            return dict(json.loads(line.removeprefix("HTTPBENCH ")))
    raise RuntimeError(f"wrk printed no summary: {out.decode()[-500:]} {err.decode()[-500:]}")


async def load(label: str, base: str, pid: int, connections: int, env: dict[str, str],
               args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then measure: 2xx answers/s, wrk's latency, errors, the server's CPU, the window."""
    if args.warmup > 0:
        await wrk(base, connections, args.warmup, env)
        await asyncio.sleep(1)  # the warm-up's last requests finish outside the window
    cpu_before, start = cpu_seconds([pid]), datetime.now(UTC)
    summary = await wrk(base, connections, args.duration, env)
    cpu, end = cpu_seconds([pid]) - cpu_before, datetime.now(UTC)
    seconds = summary["duration_us"] / 1e6
    ok = summary["requests"] - summary["non_2xx"]
    errors = {k: summary[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")}
    figures = {
        "connections": connections, "requests": summary["requests"], "rps": round(ok / seconds, 1),
        "p50_ms": round(summary["p50_us"] / 1000, 2), "p99_ms": round(summary["p99_us"] / 1000, 2),
        "server_cores": round(cpu / seconds, 2),
        "cpu_ms_per_request": round(cpu * 1000 / max(summary["requests"], 1), 3),
        "errors": errors, "window": (start, end),
    }
    say(f"{label}: {figures['rps']:,.0f} requests/s (2xx), p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"server {figures['server_cores']} cores, {figures['cpu_ms_per_request']} ms CPU/request"
        + (f", errors {errors}" if any(errors.values()) else ""))
    return figures


async def beside_bare(figures: dict[str, Any], size: int, bare: str, bare_pid: int, mode: str,
                      args: argparse.Namespace) -> dict[str, Any]:
    """The bare handler under the same load, answering ``size`` bytes; the route's ratio to it."""
    env = {"HTTP_MODE": "ingest" if mode in ("ingest", "llm") else "get", "HTTP_PATH": f"/bare?bytes={size}"}
    floor = await load(f"  bare handler, {size:,} bytes", bare, bare_pid, figures["connections"], env, args)
    return {**figures, "bytes": size, "bare_rps": floor["rps"], "bare_p99_ms": floor["p99_ms"],
            "ratio": round(figures["rps"] / floor["rps"], 3) if floor["rps"] else None}


# --- the real server -----------------------------------------------------------------------

async def start_server(data_dir: Path, **env: str) -> ServerProcess:
    """``autopilot serve`` as a user starts it: SQLite in ``data_dir``, scheduler off, warnings only."""
    server = ServerProcess(data_dir, port=consecutive_free_ports(1), extra_env={
        "AUTOPILOT_SCHEDULER_ENABLED": "false", "AUTOPILOT_LOG_LEVEL": "WARNING", **env})
    await server.start()
    return server


def pid_of(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid



async def runs_done_per_s(data_dir: Path, window: tuple[datetime, datetime]) -> float:
    """Runs that reached a paused or ended status inside ``window``, per second, from the database."""
    db = open_engine(database_url(data_dir))
    try:
        done = await count_done(db, *window)
    finally:
        await db.dispose()
    return round(done / (window[1] - window[0]).total_seconds(), 1)


async def answer_size(base: str, bearer: str, method: str, paths: list[str], body: Any = None) -> int:
    """The mean size of the answers to ``paths``; any answer but a 2xx is an error."""
    sizes = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {bearer}"}) as session:
        for path in paths:
            async with session.request(method, base + path, json=body) as response:
                text = await response.read()
                if response.status >= 300:
                    raise RuntimeError(f"{method} {path}: {response.status} {text[:300]!r}")
                sizes.append(len(text))
    return round(sum(sizes) / len(sizes))


# --- phases --------------------------------------------------------------------------------

async def in_process(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    say(f"in process: {args.in_process_n:,} runs through the engine, 256 in flight ...")
    figures = await run_ours(args.in_process_n, tmp / "in-process.sqlite", workers=256, in_flight=256,
                             max_batch=1000, resume_mode="phased")
    say(f"in process: {figures['runs_per_s']:,.0f} runs/s")
    return figures


async def ingest(args: argparse.Namespace, tmp: Path, bare: str, bare_pid: int) -> dict[str, Any]:
    data = tmp / "ingest" / "data"
    server = await start_server(data)
    bearer = token(TENANT)
    try:
        env = {"HTTP_MODE": "ingest", "HTTP_PATH": "/api/v1/exceptions", "HTTP_TOKEN": bearer}
        many = await load("ingest, 64 connections", server.base, pid_of(server), 64, {**env, "HTTP_TAG": "c64"}, args)
        many["runs_per_s"] = await runs_done_per_s(data, many["window"])
        one = await load("ingest, 1 connection", server.base, pid_of(server), 1, {**env, "HTTP_TAG": "c1"}, args)
        body = {**make_exception(1, (datetime.now(UTC) + timedelta(hours=4)).isoformat()), "source_id": "size"}
        size = await answer_size(server.base, bearer, "POST", ["/api/v1/exceptions"], body)
    finally:
        server.stop()
    say(f"ingest: {many['runs_per_s']:,.0f} runs/s done in the window (database)")
    return {"c64": await beside_bare(many, size, bare, bare_pid, "ingest", args), "c1": one}


async def llm_triage(args: argparse.Namespace, tmp: Path, bare: str) -> dict[str, Any]:
    data = tmp / "llm" / "data"
    server = await start_server(data, AUTOPILOT_TRIAGE_LLM_ENABLED="true", AUTOPILOT_LLM_BASE_URL=f"{bare}/v1",
                                AUTOPILOT_LLM_MODEL="bench-triage")
    try:
        env = {"HTTP_MODE": "llm", "HTTP_PATH": "/api/v1/exceptions", "HTTP_TOKEN": token(TENANT), "HTTP_TAG": "llm"}
        figures = await load(f"LLM triage ({args.model_delay * 1000:.0f} ms model), 256 connections",
                             server.base, pid_of(server), 256, env, args)
    finally:
        server.stop()
    figures["runs_per_s"] = await runs_done_per_s(data, figures["window"])
    async with aiohttp.ClientSession() as session, session.get(f"{bare}/v1/calls") as response:
        figures["model_calls"] = (await response.json())["calls"]
    figures["ideal_runs_per_s"] = round(256 / args.model_delay, 1)
    say(f"LLM triage: {figures['runs_per_s']:,.0f} runs/s done in the window (database), ideal "
        f"{figures['ideal_runs_per_s']:,.0f}; the model was called {figures['model_calls']:,} times (warm-up too)")
    return figures


async def query_plans(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """SQLite's plan for each SELECT the list and pending-action routes send, captured while the
    app (``create_app``, as ``serve`` builds it) answers them in this process, before the server starts."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    settings = Settings(data_dir=data_dir, scheduler_enabled=False, jwt_secret=SECRET, log_level="WARNING")
    statements: dict[str, list[tuple[str, Any]]] = {}
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            for name in ("list", "pending"):
                sent.clear()
                async with client.get(READS[name][1], headers={"Authorization": f"Bearer {token(TENANT)}"}) as answer:
                    if answer.status != 200:
                        raise RuntimeError(f"{READS[name][1]}: {answer.status} {await answer.text()}")
                statements[name] = list(sent)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    plans: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(f"file:{data_dir / 'autopilot.db'}?mode=ro", uri=True) as conn:
        for name, queries in statements.items():
            plans[name] = [{"sql": " ".join(sql.split())[:400],
                            "plan": [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]}
                           for sql, parameters in queries]
            say(f"query plan, {name}: " + " | ".join(" / ".join(q["plan"]) for q in plans[name]))
    return plans


async def reads(args: argparse.Namespace, tmp: Path, bare: str, bare_pid: int) -> dict[str, Any]:
    data = tmp / "reads" / "data"
    seeded = await seed(data, args.runs, args.template_runs)
    plans = await query_plans(data)
    sample = seeded["ids"][:: max(1, args.runs // SAMPLE_IDS)]
    ids_file = tmp / "reads" / "ids.txt"
    ids_file.write_text("\n".join(sample) + "\n")
    server = await start_server(data)
    bearer = token(TENANT)
    figures: dict[str, Any] = {}
    try:
        for name, (mode, path) in READS.items():
            paths = [path % run_id for run_id in sample[:: max(1, len(sample) // 20)]] if mode == "ids" else [path]
            size = await answer_size(server.base, bearer, "GET", paths)
            env = {"HTTP_MODE": mode, "HTTP_PATH": path, "HTTP_TOKEN": bearer, "HTTP_IDS": str(ids_file)}
            measured = await load(f"{name} ({path}), 64 connections", server.base, pid_of(server), 64, env, args)
            figures[name] = await beside_bare(measured, size, bare, bare_pid, mode, args)
    finally:
        server.stop()
    return {"routes": figures, "plans": plans, "seeded": {k: v for k, v in seeded.items() if k != "ids"}}


# --- the result ----------------------------------------------------------------------------

def flat(prefix: str, figures: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "bytes", "bare_rps", "ratio", "cpu_ms_per_request")
    return {f"{prefix}_{key}": (figures or {}).get(key) for key in keys}


def verdicts(result: dict[str, Any], llm_bound: float | None) -> dict[str, Any]:
    bounds = {**TARGETS, **({"llm_triage_runs_per_s": (">=", llm_bound)} if llm_bound else {})}
    out = {}
    for name, (comparison, bound) in bounds.items():
        value = result.get(name)
        met = None if value is None else value >= bound if comparison == ">=" else value < bound
        out[name] = {"target": f"{comparison} {bound}", "value": value, "met": met}
    return out


def summary(args: argparse.Namespace, engine: dict[str, Any], ingested: dict[str, Any],
            read: dict[str, Any] | None, llm: dict[str, Any] | None) -> dict[str, Any]:
    many, one = ingested["c64"], ingested["c1"]
    routes = read["routes"] if read else {}
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "duration": args.duration, "warmup": args.warmup, "runs_stored": args.runs if read else None,
        "ingest_runs_per_s": many["runs_per_s"], "ingest_accepted_per_s": many["rps"],
        "ingest_p50_ms": many["p50_ms"], "ingest_p99_ms": many["p99_ms"],
        "in_process_runs_per_s": engine["runs_per_s"],
        "ingest_ratio": round(many["runs_per_s"] / engine["runs_per_s"], 3),
        "ingest_bare_rps": many["bare_rps"], "ingest_bare_ratio": many["ratio"],
        "ingest_cpu_ms_c1": round(one["cpu_ms_per_request"], 2), "ingest_rps_c1": one["rps"],
        "ingest_p50_ms_c1": one["p50_ms"],
        **{key: value for name in READS for key, value in flat(name, routes.get(name)).items()},
        "bare_rps": routes["list"]["bare_rps"] if read else None,
        "llm_triage_runs_per_s": llm["runs_per_s"] if llm else None,
        "llm_ideal_runs_per_s": llm["ideal_runs_per_s"] if llm else None,
        "llm_model_calls": llm["model_calls"] if llm else None,
        "query_plans": read["plans"] if read else None, "seeded": read["seeded"] if read else None,
        "errors": {name: f["errors"] for name, f in [("ingest_c64", many), ("ingest_c1", one), *routes.items(),
                                                      *([("llm", llm)] if llm else [])]},
    }
    llm_bound = 0.8 * min(llm["ideal_runs_per_s"], many["runs_per_s"]) if llm else None
    result["targets"] = verdicts(result, round(llm_bound, 1) if llm_bound else None)
    return result


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    engine = await in_process(args, tmp)
    bare_process, bare = await start_bare(args.model_delay)
    try:
        bare_pid = bare_process.pid or 0
        ingested = await ingest(args, tmp, bare, bare_pid)
        read = None if args.skip_reads else await reads(args, tmp, bare, bare_pid)
        llm = None if args.skip_llm else await llm_triage(args, tmp, bare)
    finally:
        bare_process.terminate()
        bare_process.join(10)
    return summary(args, engine, ingested, read, llm)


def ensure_wrk() -> None:
    """wrk from Debian's packages: installed here when running as root, else how to."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("bench.http needs wrk: apt-get install wrk")
    say("installing wrk: apt-get install -y wrk")
    if subprocess.run(["apt-get", "install", "-y", "wrk"]).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds of measured load per figure")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of the same load before each")
    parser.add_argument("--runs", type=int, default=100_000, help="runs stored for the reads")
    parser.add_argument("--template-runs", type=int, default=1000,
                        help="real runs made by the engine, which the stored ones copy")
    parser.add_argument("--in-process-n", type=int, default=20000, help="runs through the engine in process")
    parser.add_argument("--model-delay", type=float, default=0.2, help="seconds the model takes to answer")
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (databases, server logs)")
    args = parser.parse_args()
    ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="autopilot-http-"))
    say(f"databases and server logs in {tmp}")
    try:
        result = asyncio.run(measure(args, tmp))
    except BaseException:
        say(f"benchmark failed; logs kept in {tmp}")
        raise
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
