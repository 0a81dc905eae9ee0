"""SSE fan-out benchmark: many event-stream clients on one server process while exceptions are
ingested at a steady rate.

What is measured, in one invocation:

1. The real server (``python -m api.cli serve``, as ``autopilot serve`` runs it) starts as a
   child process on a fresh SQLite file, with the scheduler off so the only load is ours.
2. ``--clients`` stream clients (aiohttp, one connection each) open
   ``GET /api/v1/events/stream`` (``--topics`` adds the topic filter) and wait for the
   ``retry:`` line, i.e. until every stream is subscribed. Clients and exceptions are spread
   evenly over ``--tenants`` tenants (default 10, a multi-tenant service: each client watches
   its own tenant, which gets a tenth of the ingest). What the server has to do grows with
   deliveries, clients x the events each one wants: 1,000 clients on one tenant at 200 runs/s
   of 11 events are 2.2 million deliveries a second; with the defaults, 220,000.
3. One ingester posts ``payment.failed`` exceptions at ``--rate`` per second for ``--duration``
   seconds (each is a run of 11 events that completes at once), after ``--warmup`` seconds at the
   same rate that are not counted.
4. Every client counts the events it receives; every tenth client ("probe") also parses them
   and takes, for each one, the delivery latency: from the event's ``created_at`` (stamped by the
   pipeline just before the commit that makes it durable, so this is an upper bound of
   "committed -> received") to the moment the client read it. Server and clients are on one
   machine, so they share the clock. Probes also note when each ``run.received`` arrived, which
   is compared with the moment the ingest's own ``202`` (sent after the commit) arrived.
5. After the ingest stops, the clients get up to ``--drain`` seconds to receive the rest; then
   every client's count is checked against the log (the SQLite file read with ``sqlite3``):
   ``delivered`` over ``expected``.

Printed: events delivered (and expected), p50/p99/max latency, the server's resident memory
(``VmRSS`` now and its peak ``VmHWM``, from ``/proc/<pid>/status``) and CPU, the ingest rate
achieved and its ``202`` latency. The last line is one JSON object with every figure.

Run: ``python -m bench.sse_fanout [--clients N] [--rate R] [--duration S] [--topics PATTERNS]
[--tenants T]`` from the repository root (``./dev bench-sse`` does the same). The target: 1,000
clients, p99 under 100 ms at 200 runs/s. Clients and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from bench.sse_clients import Fleet, ingester, percentile, stream_client
from eventbus.topics import topic_matches

ROOT_DIR = Path(__file__).resolve().parent.parent
"""The server is started from the repository root, as `autopilot serve` would be."""

SECRET = "bench-sse-" + "k" * 32
TARGET_P99_MS = 100.0


def token(tenant: str) -> str:
    claims = {"sub": "bench", "tenant": tenant, "roles": ["viewer", "operator"],
              "exp": datetime.now(UTC) + timedelta(hours=2)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def proc_status(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak, in MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = round(int(value.split()[0]) / 1024, 1)
    return figures


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expected_counts(db_file: Path, tenants: list[str], patterns: list[str]) -> dict[str, int]:
    """Events each tenant's clients should have received: the log, read with plain sqlite3."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT tenant_id, topic, count(*) FROM events GROUP BY tenant_id, topic").fetchall()
    finally:
        conn.close()
    counts = dict.fromkeys(tenants, 0)
    for tenant, topic, n in rows:
        if tenant in counts and any(topic_matches(p, topic) for p in patterns):
            counts[tenant] += n
    return counts


async def scrape(session: aiohttp.ClientSession, base: str, name: str) -> float | None:
    async with session.get(f"{base}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


async def run(args: argparse.Namespace, base: str, pid: int, db_file: Path) -> dict[str, Any]:
    tenants = [f"bench-{t}" for t in range(args.tenants)]
    bearers = [token(t) for t in tenants]
    patterns = [p.strip() for p in args.topics.split(",")] if args.topics else ["#"]
    query = f"?topics={args.topics.replace('#', '%23')}" if args.topics else ""
    fleet = Fleet(args.clients)
    load_before = round(os.getloadavg()[0], 2)
    gate = asyncio.Semaphore(100)  # connect in waves the listen backlog can take
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        clients = [asyncio.create_task(stream_client(i, session, f"{base}/api/v1/events/stream{query}",
                                                     bearers[i % len(bearers)], fleet, gate))
                   for i in range(args.clients)]
        try:
            await asyncio.wait_for(fleet.all_ready.wait(), 120)
        except TimeoutError:
            raise RuntimeError(f"only {fleet.ready} of {args.clients} streams opened: {fleet.errors[:3]}") from None
        connect_seconds = time.perf_counter() - started
        rss_idle = proc_status(pid)

        start_at = time.time() + 0.5
        fleet.measure_from = start_at + args.warmup
        receiver, sender = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.get_context("spawn").Process(target=ingester, args=(
            base, bearers, args.rate, args.warmup, args.duration, start_at, sender))
        process.start()
        async with aiohttp.ClientSession() as ingest_session:
            await asyncio.sleep(max(0.0, fleet.measure_from - time.time()))
            cpu_before, own_before, delivered_before = cpu_seconds(pid), time.process_time(), sum(fleet.counts)
            while not receiver.poll():
                await asyncio.sleep(0.05)
            record = receiver.recv()
            process.join()
            ingest_seconds, posted, ingest_ms = record["seconds"], record["posted"], record["ingest_ms"]
            fleet.answered = record["answered"]
            server_cpu = (cpu_seconds(pid) - cpu_before) / ingest_seconds
            bench_cpu = (time.process_time() - own_before) / ingest_seconds
            delivered_in_window = sum(fleet.counts) - delivered_before
            rss_loaded = proc_status(pid)
            pace = await scrape(ingest_session, base, "autopilot_sse_pace_seconds")

            expected = expected_counts(db_file, tenants, patterns)
            per_client = [expected[tenants[i % len(tenants)]] for i in range(args.clients)]
            drain_until = time.perf_counter() + args.drain
            while time.perf_counter() < drain_until and any(c < e for c, e in zip(fleet.counts, per_client,
                                                                                 strict=True)):
                await asyncio.sleep(0.05)
            catchups = await scrape(ingest_session, base, "autopilot_sse_catchups_total")
            open_streams = await scrape(ingest_session, base, "autopilot_sse_streams_open")
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    delivered, wanted = sum(fleet.counts), sum(per_client)
    after_202 = [(when - fleet.answered[run_id]) * 1000 for run_id, when in fleet.received if run_id in fleet.answered]
    complete = sum(1 for c, e in zip(fleet.counts, per_client, strict=True) if c == e)
    return {
        "clients": args.clients, "tenants": args.tenants, "topics": args.topics or "#",
        "runs_per_s_target": args.rate, "runs_per_s_ingested": round(posted / ingest_seconds, 1),
        "runs_ingested": posted, "duration_s": round(ingest_seconds, 2),
        "events_delivered": delivered, "events_expected": wanted, "clients_complete": complete,
        "events_delivered_per_s": round(delivered_in_window / ingest_seconds),
        "latency_ms": {"p50": percentile(fleet.latencies, 0.50), "p99": percentile(fleet.latencies, 0.99),
                       "max": round(max(fleet.latencies), 1) if fleet.latencies else None,
                       "samples": len(fleet.latencies)},
        "after_202_ms": {"p50": percentile(after_202, 0.50), "p99": percentile(after_202, 0.99),
                         "max": round(max(after_202), 1) if after_202 else None, "samples": len(after_202)},
        "ingest_202_ms": {"p50": percentile(ingest_ms, 0.50), "p99": percentile(ingest_ms, 0.99)},
        "server_rss_mib": {"idle_with_streams": rss_idle.get("VmRSS"), "end": rss_loaded.get("VmRSS"),
                           "peak": rss_loaded.get("VmHWM")},
        "server_cpu_cores": round(server_cpu, 2), "stream_clients_cpu_cores": round(bench_cpu, 2),
        "connect_s": round(connect_seconds, 2), "open_streams": open_streams, "catchups": catchups,
        "pace_s_at_end": pace,
        "overflow_events": fleet.overflows, "errors": fleet.errors[:5],
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": load_before},
    }


def start_server(data_dir: Path, port: int, env: dict[str, str], profile: str | None) -> subprocess.Popen[bytes]:
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115
    under = ["-m", "cProfile", "-o", profile] if profile else []
    return subprocess.Popen([sys.executable, *under, "-m", "api.cli", "--data-dir", str(data_dir), "serve", "--port",
                             str(port)], cwd=ROOT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("the server did not become ready in 30 s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="concurrent stream clients")
    parser.add_argument("--rate", type=float, default=200, help="exceptions (runs) ingested per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of measured ingest")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of ingest before measuring")
    parser.add_argument("--drain", type=float, default=15, help="seconds the clients get to receive the rest")
    parser.add_argument("--topics", default="", help="topic patterns each client asks for (default: every event)")
    parser.add_argument("--tenants", type=int, default=10,
                        help="clients and exceptions spread evenly over this many tenants (1: every client sees "
                             "every event)")
    parser.add_argument("--flush", type=float, default=None, help="the server's sse_flush_seconds")
    parser.add_argument("--profile", help="run the server under cProfile, writing its statistics to this file")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, args.clients * 2 + 256))  # the server inherits it
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    env = {**os.environ, "AUTOPILOT_JWT_SECRET": SECRET, "AUTOPILOT_SCHEDULER_ENABLED": "false",
           "AUTOPILOT_LOG_LEVEL": "WARNING"}
    if args.flush is not None:
        env["AUTOPILOT_SSE_FLUSH_SECONDS"] = str(args.flush)
    with tempfile.TemporaryDirectory(prefix="sse-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start_server(data_dir, port, env, args.profile)
        try:
            asyncio.run(wait_ready(base, process))
            figures = asyncio.run(run(args, base, process.pid, data_dir / "autopilot.db"))
        finally:
            process.terminate()
            process.wait(timeout=30)
    figures["target"] = {"clients": 1000, "runs_per_s": 200, "p99_ms": TARGET_P99_MS}
    p99 = figures["latency_ms"]["p99"]
    figures["target_met"] = bool(args.clients >= 1000 and args.rate >= 200 and p99 is not None
                                 and p99 < TARGET_P99_MS and figures["events_delivered"] == figures["events_expected"])
    latency = figures["latency_ms"]
    print(f"{figures['clients']} clients ({figures['tenants']} tenant(s), topics {figures['topics']}), "
          f"{figures['runs_per_s_ingested']} runs/s for {figures['duration_s']} s")
    print(f"events delivered: {figures['events_delivered']:,} of {figures['events_expected']:,} expected "
          f"({figures['clients_complete']} of {figures['clients']} clients complete)")
    print(f"delivery latency (created_at -> received): p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
          f"max {latency['max']} ms over {latency['samples']:,} deliveries")
    after = figures["after_202_ms"]
    print(f"run.received on the streams after the ingest's own 202 (≈ commit -> received): p50 {after['p50']} ms, "
          f"p99 {after['p99']} ms, max {after['max']} ms")
    print(f"server: RSS {figures['server_rss_mib']['end']} MiB (peak {figures['server_rss_mib']['peak']} MiB), "
          f"CPU {figures['server_cpu_cores']} cores; ingest 202 p99 {figures['ingest_202_ms']['p99']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
