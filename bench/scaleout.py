"""Scale-out benchmark: several ``autopilot serve`` processes on one PostgreSQL, driven over HTTP.

What is measured, in one invocation:

1. **Throughput with 1, 2 and 3 processes.** Each phase starts the real cluster
   (``autopilot serve --processes N --create-database``, scheduler off, no demo) on a fresh
   PostgreSQL database, and ``wrk`` (one thread per process, each on its process's port, Lua
   script ``bench/scaleout.lua``; ``C`` connections in all, split over the processes) POSTs
   ``payment.failed`` exceptions for ``--duration`` seconds after ``--warmup`` seconds of the same
   load; one in ten is over acme's approval amount and pauses. Each size is measured at every
   offered load of ``--connections`` (default 64 and 256), each on a fresh cluster and database:
   a size's capacity is its best completed runs/s over those loads, since an offered load that
   keeps one process busy does not keep two busy (a closed-loop client sends no faster than the
   answers come back). Reported per phase: accepted requests/s (2xx answers), completed runs/s
   (runs whose row reached an ended or waiting status, ``updated_at`` inside the measured window,
   counted in the database), p50/p99 ingest latency (wrk's, over every thread), the CPU the
   servers, PostgreSQL and wrk used over the window (in cores, from ``/proc``) and how busy the
   whole machine was; per size, its capacity; and the ratio of the capacities 2-to-1.
2. **Failover.** Two processes on a fresh database, with a configuration copy in which each
   exception (``bench.tool_call``) runs a playbook whose first step calls a slow idempotent HTTP
   tool served by this script, so runs stay in an active status, owned by a process, while the
   call is made (``--failover-workers`` engine workers per process, so runs wait on the tool and
   not in a queue). One ``wrk -t1`` per process drives it; after ``--kill-after`` seconds the second
   process is SIGKILLed and its wrk stopped (a load balancer stops sending to a dead backend).
   Reported: seconds from the kill until no run in an active status is owned by the dead
   process's executor (``runs.executor_id``, ``executors.pid``), how many it owned then, and,
   once the load ends and the runs settle: lost runs (2xx answers whose run is not in the
   database), duplicated runs (two runs for one request's unique ``source_id``), duplicated
   actions (two ``playbook.step_completed`` for one run and step), runs left in an active
   status, runs whose event sequence has a gap, and tool calls made more than once for one
   ``<run>:<step>`` key (allowed for an idempotent tool whose caller died mid-call).

The last line printed is one JSON object. Target (issue 12): 2 processes give at least 1.5x the
runs/s of one on a 2-core machine; failover within 15 s; 0 lost, 0 duplicated. wrk, the servers
and PostgreSQL share this machine's cores, so the figures are of the whole machine.

Run: ``python -m bench.scaleout [--duration S] [--connections 64,256] [--processes 1,2,3]`` from the
repository root; needs ``wrk`` (Debian: ``apt-get install wrk``) and the PostgreSQL server of
``--server`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import SHIPPED_CONFIG_DIR
from domain.statuses import ACTIVE, TERMINAL, WAITING
from store.database import open_engine
from store.tables import runs
from tests.e2e.cluster import Cluster

ROOT_DIR = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().with_name("scaleout.lua")
SECRET = "bench-scaleout-" + "k" * 32
DONE_STATUSES = sorted(TERMINAL | WAITING)
ACTIVE_STATUSES = sorted(ACTIVE)
TARGET_RATIO = 1.5
TARGET_FAILOVER_SECONDS = 15.0

TOOL_PLAYBOOK = """\
id: zz-bench-tool
name: Ask a slow service, then note it
version: 1
priority: 1000
match: {domain: bench, exception_type: "bench.tool_call"}
steps:
  - id: ask
    name: Ask the slow service
    action: call_tool
    params: {tool: slow_ack, input: {reference: "{exception.source_id}"}}
    outputs:
      ack: {type: string}
  - id: note
    name: Note the answer
    action: add_comment
    params: {text: "acknowledged {steps.ask.outputs.ack}"}
"""
TOOL_RULE = {"id": "bench-tool-call", "when": {"domain": "bench", "type": "bench.tool_call"},
             "severity": "low", "confidence": 0.9}


def token(tenant: str) -> str:
    claims = {"sub": "bench", "tenant": tenant, "roles": ["operator"], "exp": datetime.now(UTC) + timedelta(hours=2)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def start_cluster(processes: int, url: str, tmp: Path, name: str, config_dir: Path | None = None,
                  **settings: str) -> Cluster:
    env = {**os.environ, "AUTOPILOT_DATABASE_URL": url, "AUTOPILOT_JWT_SECRET": SECRET,
           "AUTOPILOT_SCHEDULER_ENABLED": "false", "AUTOPILOT_LOG_LEVEL": "WARNING"}
    if config_dir is not None:
        env["AUTOPILOT_CONFIG_DIR"] = str(config_dir)
    env.update({f"AUTOPILOT_{name.upper()}": value for name, value in settings.items()})
    return Cluster.launch(processes, tmp / f"{name}-data", tmp / f"{name}.log", env, cwd=ROOT_DIR)


@dataclass
class Load:
    """One wrk process and the files its threads write accepted run ids to."""

    process: asyncio.subprocess.Process
    prefix: Path
    threads: int
    summary: dict[str, Any] = field(default_factory=dict)

    async def finish(self) -> dict[str, Any]:
        out, err = await self.process.communicate()
        for line in out.decode().splitlines():
            if line.startswith("SCALEOUT "):
                self.summary = json.loads(line.removeprefix("SCALEOUT "))
        if not self.summary:
            raise RuntimeError(f"wrk printed no summary: {out.decode()[-500:]} {err.decode()[-500:]}")
        return self.summary

    def run_ids(self) -> list[str]:
        ids: list[str] = []
        for thread in range(self.threads):
            path = Path(f"{self.prefix}{thread}")
            if path.exists():
                ids += [line.split()[1] for line in path.read_text().splitlines() if line.strip()]
        return ids


async def start_wrk(ports: list[int], bearer: str, seconds: float, connections: int, prefix: Path,
                    kind: str, tag: str) -> Load:
    env = {**os.environ, "SCALEOUT_PORTS": ",".join(map(str, ports)), "SCALEOUT_TOKEN": bearer,
           "SCALEOUT_OUT": str(prefix), "SCALEOUT_KIND": kind, "SCALEOUT_TAG": tag}
    threads = len(ports)
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t", str(threads), "-c", str(max(connections, threads)), "-d", f"{seconds:.0f}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{ports[0]}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    return Load(process, prefix, threads)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (those that are gone count 0)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def reaped_children_cpu_seconds() -> float:
    """CPU seconds of this script's children that have ended (here: wrk, once it has finished)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine, to tell how much CPU the database took."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" (", 1)[1].startswith("postgres)"):
                pids.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return pids


async def count_done(db: AsyncEngine, start: datetime, end: datetime) -> int:
    async with db.connect() as conn:
        query = select(func.count()).select_from(runs).where(
            runs.c.status.in_(DONE_STATUSES), runs.c.updated_at >= start, runs.c.updated_at < end)
        return int(await conn.scalar(query) or 0)


async def integrity(db: AsyncEngine, accepted: list[str]) -> dict[str, int]:
    """Lost runs, duplicated runs and actions, runs left active, runs with a gap in their events."""
    async with db.connect() as conn:
        present = {row[0] for row in await conn.execute(select(runs.c.id))}
        duplicated_runs = await conn.scalar(text(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM runs "
            "WHERE workflow_id = 'exception_pipeline' GROUP BY tenant_id, exception->>'source_id') AS s"))
        duplicated_actions = await conn.scalar(text(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM events "
            "WHERE topic = 'playbook.step_completed' GROUP BY run_id, payload->>'step_id') AS s"))
        active = await conn.scalar(select(func.count()).select_from(runs).where(runs.c.status.in_(ACTIVE_STATUSES)))
        gaps = await conn.scalar(text(
            "SELECT count(*) FROM runs r LEFT JOIN (SELECT run_id, count(*) AS n, max(seq) AS top FROM events "
            "GROUP BY run_id) e ON e.run_id = r.id WHERE coalesce(e.n, 0) <> r.last_seq "
            "OR coalesce(e.top, 0) <> r.last_seq"))
    return {"accepted": len(accepted), "lost": len(set(accepted) - present),
            "duplicated_accepts": len(accepted) - len(set(accepted)),
            "duplicated_runs": int(duplicated_runs or 0), "duplicated_actions": int(duplicated_actions or 0),
            "active_left": int(active or 0), "seq_gaps": int(gaps or 0)}


async def settle(db: AsyncEngine, timeout: float) -> float | None:
    """Seconds until no run is in an active status, or ``None`` past ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        async with db.connect() as conn:
            left = await conn.scalar(select(func.count()).select_from(runs).where(
                runs.c.status.in_(ACTIVE_STATUSES)))
        if not left:
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.2)
    return None


async def drop_database(server: str, name: str) -> None:
    admin = open_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def throughput(processes: int, connections: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    tag = f"{processes}_{connections}"
    name = f"bench_scaleout_{os.getpid()}_{tag}"
    url = f"{args.server}/{name}"
    cluster = start_cluster(processes, url, tmp, f"tp{tag}")
    db = open_engine(url)
    try:
        await cluster.ready()
        bearer = token("acme")
        accepted: list[str] = []
        if args.warmup > 0:
            warm = await start_wrk(cluster.ports, bearer, args.warmup, connections,
                                   tmp / f"warm{tag}-", "pipeline", f"w{tag}")
            await warm.finish()
            accepted += warm.run_ids()
        await asyncio.sleep(1)  # let the warm-up's last runs land outside the window
        servers, database = list(cluster.child_pids().values()), postgres_pids()
        start = datetime.now(UTC)
        load = await start_wrk(cluster.ports, bearer, args.duration, connections,
                               tmp / f"load{tag}-", "pipeline", f"m{tag}")
        cpu_before = (cpu_seconds(servers), cpu_seconds(database), reaped_children_cpu_seconds())
        machine_before = machine_busy_seconds()
        summary = await load.finish()
        end = datetime.now(UTC)
        cpu = (cpu_seconds(servers) - cpu_before[0], cpu_seconds(database) - cpu_before[1],
               reaped_children_cpu_seconds() - cpu_before[2])
        machine = [after - before for after, before in zip(machine_busy_seconds(), machine_before, strict=True)]
        window = (end - start).total_seconds()
        done = await count_done(db, start, end)
        await settle(db, 30)
        checked = await integrity(db, accepted + load.run_ids())
    finally:
        cluster.stop()
        await db.dispose()
        if not args.keep:
            await drop_database(args.server, name)
    seconds = summary["duration_us"] / 1e6
    figures = {
        "processes": processes, "seconds": round(seconds, 2), "requests": summary["requests"],
        "accepted": summary["accepted"], "accepted_per_s": round(summary["accepted"] / seconds, 1),
        "runs_per_s": round(done / window, 1), "runs_done_in_window": done,
        "p50_ms": round(summary["p50_us"] / 1000, 2), "p99_ms": round(summary["p99_us"] / 1000, 2),
        "connections": connections, "server_cores": round(cpu[0] / window, 2),
        "postgres_cores": round(cpu[1] / window, 2), "wrk_cores": round(cpu[2] / window, 2),
        "machine_busy": round(machine[0] / machine[1], 2),
        "errors": {k: summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx")},
        **{k: checked[k] for k in ("lost", "duplicated_runs", "duplicated_actions", "active_left", "seq_gaps")},
    }
    print(f"{processes} process(es), {connections} connections: {figures['accepted_per_s']:,.0f} accepted/s, "
          f"{figures['runs_per_s']:,.0f} runs/s done, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, CPU: "
          f"servers {figures['server_cores']} cores, PostgreSQL {figures['postgres_cores']}, wrk "
          f"{figures['wrk_cores']}, machine {figures['machine_busy']:.0%} busy, errors {figures['errors']}, "
          f"lost {figures['lost']}, duplicated {figures['duplicated_runs']}", file=sys.stderr, flush=True)
    return figures


class SlowTool:
    """The HTTP tool of the failover phase: answers after ``delay`` seconds and counts calls per
    ``Idempotency-Key``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls[request.headers.get("Idempotency-Key", "-")] += 1
        await asyncio.sleep(self.delay)
        return web.json_response({"ack": "ok"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/ack", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def tool_config(directory: Path, tool_port: int) -> Path:
    """The shipped configuration plus the slow tool, its playbook and a triage rule for it."""
    import yaml

    shutil.copytree(SHIPPED_CONFIG_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (directory / "playbooks" / "zz-bench-tool.yaml").write_text(TOOL_PLAYBOOK)
    triage = yaml.safe_load((directory / "triage.yaml").read_text())
    triage["rules"].append(TOOL_RULE)
    (directory / "triage.yaml").write_text(yaml.safe_dump(triage))
    (directory / "tools.yaml").write_text(yaml.safe_dump({"tools": [{
        "name": "slow_ack", "kind": "http", "url": f"http://127.0.0.1:{tool_port}/ack", "method": "POST",
        "timeout_seconds": 10, "retries": 2, "backoff_seconds": 0.2, "idempotent": True}]}))
    return directory


async def has_executors(db: AsyncEngine) -> bool:
    async with db.connect() as conn:
        return bool(await conn.scalar(text(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'runs' AND column_name = 'executor_id'")))


async def owned_active(db: AsyncEngine, executor_id: str | None) -> int:
    """Runs in an active status owned by ``executor_id`` (every one, when ``None``)."""
    query = select(func.count()).select_from(runs).where(runs.c.status.in_(ACTIVE_STATUSES))
    if executor_id is not None:
        query = query.where(text("executor_id = :executor").bindparams(executor=executor_id))
    async with db.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def failover(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    name = f"bench_scaleout_{os.getpid()}_failover"
    url = f"{args.server}/{name}"
    tool = SlowTool(args.tool_delay)
    await tool.start()
    # Enough workers that the slow tool is not the bottleneck: runs wait on it, not in a queue.
    cluster = start_cluster(2, url, tmp, "failover", tool_config(tmp / "failover-config", tool.port),
                            engine_workers=str(args.failover_workers))
    db = open_engine(url)
    try:
        await cluster.ready()
        bearer = token("bench")
        loads = [await start_wrk([port], bearer, args.failover_load, args.failover_connections,
                                 tmp / f"failover{i}-", "tool", f"f{i}") for i, port in enumerate(cluster.ports)]
        await asyncio.sleep(args.kill_after)
        victim = cluster.child_pids()[1]
        executor_id: str | None = None
        if await has_executors(db):
            async with db.connect() as conn:
                executor_id = await conn.scalar(text("SELECT id FROM executors WHERE pid = :pid"), {"pid": victim})
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        loads[1].process.send_signal(signal.SIGINT)  # the balancer stops sending to the dead process
        owned_then = await owned_active(db, executor_id)
        failover_seconds: float | None = None
        while time.monotonic() - killed_at < args.failover_timeout:
            if await owned_active(db, executor_id) == 0:
                failover_seconds = round(time.monotonic() - killed_at, 2)
                break
            await asyncio.sleep(0.2)
        summaries = [await load.finish() for load in loads]
        settled = await settle(db, args.failover_timeout)
        checked = await integrity(db, [run_id for load in loads for run_id in load.run_ids()])
    finally:
        cluster.stop()
        await tool.stop()
        await db.dispose()
        if not args.keep:
            await drop_database(args.server, name)
    figures = {
        "measured": "runs owned by the dead executor" if executor_id else
                    "any run in an active status (no executor of the killed pid found)",
        "owned_at_kill": owned_then, "failover_seconds": failover_seconds, "settled_seconds_after_load": settled,
        "accepted": checked["accepted"], "requests": sum(s["requests"] for s in summaries),
        "tool_calls": sum(tool.calls.values()), "tool_calls_repeated": sum(n - 1 for n in tool.calls.values() if n > 1),
        **{k: checked[k] for k in ("lost", "duplicated_runs", "duplicated_actions", "active_left", "seq_gaps")},
    }
    print(f"failover: {owned_then} active runs owned by the killed process, taken over in {failover_seconds} s "
          f"({figures['measured']}); lost {figures['lost']}, duplicated runs {figures['duplicated_runs']}, "
          f"actions {figures['duplicated_actions']}, left active {figures['active_left']}", file=sys.stderr, flush=True)
    return figures


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    measured = [await throughput(n, c, args, tmp) for n in ([] if args.only_failover else args.processes)
                for c in args.connections]
    phases: dict[int, dict[str, Any]] = {}  # per size, its phase with the most runs/s: its capacity
    for phase in measured:
        best = phases.get(phase["processes"])
        if best is None or phase["runs_per_s"] > best["runs_per_s"]:
            phases[phase["processes"]] = phase
    over = await failover(args, tmp) if not args.skip_failover else None
    rate = {n: phases[n]["runs_per_s"] for n in phases}
    ratio = round(rate[2] / rate[1], 2) if 1 in rate and 2 in rate and rate[1] else None
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "duration": args.duration, "connections": args.connections,
        **{f"runs_per_s_{n}": rate[n] for n in rate},
        **{f"accepted_per_s_{n}": phases[n]["accepted_per_s"] for n in phases},
        **{f"p50_ms_{n}": phases[n]["p50_ms"] for n in phases},
        **{f"p99_ms_{n}": phases[n]["p99_ms"] for n in phases},
        **{f"connections_{n}": phases[n]["connections"] for n in phases},
        "ratio_2_to_1": ratio,
        "failover_seconds": over["failover_seconds"] if over else None,
        "lost": sum(p["lost"] for p in measured) + (over["lost"] if over else 0),
        "duplicated": sum(p["duplicated_runs"] + p["duplicated_actions"] for p in measured)
        + (over["duplicated_runs"] + over["duplicated_actions"] if over else 0),
        "phases": measured, "failover": over,
    }
    result["target"] = {
        "ratio_2_to_1": TARGET_RATIO, "failover_seconds": TARGET_FAILOVER_SECONDS,
        "met": bool(ratio is not None and ratio >= TARGET_RATIO and over and over["failover_seconds"] is not None
                    and over["failover_seconds"] <= TARGET_FAILOVER_SECONDS
                    and result["lost"] == 0 and result["duplicated"] == 0),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql+asyncpg://postgres@127.0.0.1:5432",
                        help="the PostgreSQL server; each phase creates a database of its own there")
    parser.add_argument("--processes", type=lambda s: [int(n) for n in s.split(",")], default=[1, 2, 3],
                        help="cluster sizes to measure, comma-separated (default 1,2,3)")
    parser.add_argument("--duration", type=float, default=15, help="seconds of measured load per size")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before each measurement")
    parser.add_argument("--connections", type=lambda s: [int(n) for n in s.split(",")], default=[64, 256],
                        help="offered loads, comma-separated: wrk connections in all, split evenly over the "
                             "processes; each size is measured at each (default 64,256)")
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--only-failover", action="store_true", help="skip the throughput sizes")
    parser.add_argument("--failover-load", type=float, default=25, help="seconds of load in the failover phase")
    parser.add_argument("--failover-connections", type=int, default=8, help="wrk connections per process there")
    parser.add_argument("--kill-after", type=float, default=5, help="seconds of load before the SIGKILL")
    parser.add_argument("--tool-delay", type=float, default=0.5, help="seconds the slow tool takes to answer")
    parser.add_argument("--failover-workers", type=int, default=256,
                        help="engine workers per process in the failover phase (tool calls in flight at once)")
    parser.add_argument("--failover-timeout", type=float, default=90, help="give up waiting after this long")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the temp directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench.scaleout needs wrk: apt-get install wrk")
    make_url(args.server)  # refuse a malformed URL before starting anything
    tmp = Path(tempfile.mkdtemp(prefix="autopilot-scaleout-"))
    print(f"logs in {tmp}", file=sys.stderr)
    result = asyncio.run(measure(args, tmp))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
