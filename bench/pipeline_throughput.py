"""Pipeline benchmark: durable runs per second, ours vs. LangGraph vs. raw SQLite.

What is measured, in one process and one invocation:

1. **Our pipeline** (``pipeline.engine.PipelineEngine`` on a fresh SQLite file in a temp
   dir, WAL + ``synchronous=NORMAL``, the shipped config). N ``payment.failed`` /
   ``card_declined`` exceptions are submitted for tenant ``acme``; every tenth carries
   amount 20000.00, which is over acme's ``amount_gte: 5000`` approval trigger, so one run
   in ten pauses for a human. Submissions run as a sliding window of at most ``--in-flight``
   (default: ``--workers``) concurrent ``start_run`` calls, like that many API clients; each
   returns once its first write (``run.received`` and every local stage after it, up to the
   pause or the end) is committed. The clock starts at the first
   submission. When every run has paused or ended (``drain()``), a simulated human approves
   each paused run (``resume(..., {"decision": "approve"})``) and the engine drains again;
   ``--resume-mode pipelined`` instead approves each run as soon as its ``run.paused`` event
   is published (only after the pause is committed). The clock stops when the engine has
   drained, i.e. every run's last transition is committed. Runs/s = N / that wall time.

   A run only counts if its log is in the database: afterwards the file is re-opened with
   plain ``sqlite3`` (so only committed data is visible) and the benchmark fails unless
   every submitted run is ``completed``, its events have ``seq`` 1..k with no gap and
   ``k == runs.last_seq``, the first topic is ``run.received`` and the last ``run.completed``,
   and paused runs carry ``run.paused`` + ``dashboard.hitl_resumed``.

   ``--database-url postgresql+asyncpg://...`` runs this part on PostgreSQL instead (the
   database is created if missing and should be empty; it is read back over a new connection
   after the engine has stopped), for the single-process figure beside SQLite's.

2. **LangGraph baseline** (``bench/baseline_langgraph.py``): the same five-node shape as a
   LangGraph ``StateGraph`` checkpointed by ``AsyncSqliteSaver``, same 1-in-10 pause and
   resume. This is what the engine was built to beat.

3. **Raw SQLite ceiling** (``bench/raw_sqlite.py``): stdlib ``sqlite3``, one transaction per
   run (1 run row + 10 event rows), no framework. Our engine group-commits many runs per
   transaction, so it can in principle exceed this "one commit per run" ceiling; the ratio
   shows how much of the disk's commit budget the Python side leaves on the table.

Why: the product claim is "2,000 runs/s durable, 30x the LangGraph baseline" on a laptop-
class machine. Durable means the figure is only counted for runs whose events are committed
and verified, not runs merely accepted into a queue.

Run: ``python -m bench.pipeline_throughput [--n N] [--baseline-n M] [--workers W] [--skip-baseline]
[--database-url URL]``
from the repository root. LangGraph is an optional extra (``pip install -e '.[bench]'``);
without it the baseline is skipped with a message. The last line printed is one JSON object
with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.raw_sqlite import run_raw_sqlite_ceiling
from bench.scaleout import drop_database
from config.catalog import load_catalog
from config.settings import SHIPPED_CONFIG_DIR, Settings
from eventbus import InProcessBus
from pipeline.gc_tuning import tune_garbage_collector
from pipeline.runtime import open_runtime
from pipeline.start_request import StartRequest
from store.create_database import create_database_if_missing
from store.database import migrate, open_engine

TENANT = "acme"
WORKFLOW = "exception_pipeline"
PAUSE_EVERY = 10
TARGET_RUNS_PER_S = 2000.0
TARGET_RATIO = 30.0


def make_exception(i: int, deadline: str) -> dict[str, Any]:
    """A fresh exception per run (as an API request would parse); every tenth needs approval."""
    return {
        "source": "stripe",
        "domain": "payments",
        "type": "payment.failed",
        "code": "card_declined",
        "amount": "20000.00" if i % PAUSE_EVERY == 0 else "40.00",
        "currency": "USD",
        "sla_deadline": deadline,
        "context": {"customer_email": f"customer{i}@example.com"},
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


COMMITTED_QUERIES = (
    "SELECT status, count(*) FROM runs GROUP BY status",
    "SELECT id, status, last_seq FROM runs",
    "SELECT run_id, seq, topic FROM events ORDER BY run_id, seq",
    "SELECT count(*) FROM events",
)
Committed = tuple[Sequence[Any], Sequence[Any], Sequence[Any], int]


def read_sqlite(db_file: Path) -> Committed:
    """What is committed in the SQLite file, read with plain sqlite3."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        statuses, runs, events, total = (conn.execute(query).fetchall() for query in COMMITTED_QUERIES)
        return statuses, runs, events, total[0][0]
    finally:
        conn.close()


async def read_database(url: str) -> Committed:
    """What is committed in another database, read over a connection of its own."""
    db = open_engine(url)
    try:
        async with db.connect() as conn:
            statuses, runs, events, total = [(await conn.execute(text(query))).all() for query in COMMITTED_QUERIES]
        return statuses, runs, events, total[0][0]
    finally:
        await db.dispose()


def verify(committed: Committed, run_ids: list[str], paused_ids: set[str]) -> dict[str, Any]:
    """Raise unless every run is complete in what was read back after the engine stopped."""
    status_rows, run_rows, event_rows, events_total = committed
    statuses = {status: count for status, count in status_rows}
    runs = {rid: (status, last_seq) for rid, status, last_seq in run_rows}
    topics: dict[str, list[tuple[int, str]]] = {}
    for run_id, seq, topic in event_rows:
        topics.setdefault(run_id, []).append((seq, topic))

    problems: list[str] = []
    if len(set(run_ids)) != len(run_ids):
        problems.append("duplicate run ids returned by start_run")
    if set(runs) != set(run_ids):
        problems.append(f"{len(set(run_ids) - set(runs))} submitted runs missing, "
                        f"{len(set(runs) - set(run_ids))} unexpected runs in the database")
    per_kind: dict[str, set[int]] = {"auto": set(), "paused": set()}
    for run_id in run_ids:
        status, last_seq = runs.get(run_id, (None, None))
        log = topics.get(run_id, [])
        seqs = [s for s, _ in log]
        names = [t for _, t in log]
        if status != "completed":
            problems.append(f"{run_id} is {status}, not completed")
        elif seqs != list(range(1, len(seqs) + 1)) or len(seqs) != last_seq:
            problems.append(f"{run_id}: seqs {seqs[:3]}..{seqs[-3:]} vs last_seq {last_seq}")
        elif names[0] != "run.received" or names[-1] != "run.completed":
            problems.append(f"{run_id}: log runs {names[0]} .. {names[-1]}")
        elif run_id in paused_ids and not {"run.paused", "dashboard.hitl_resumed"} <= set(names):
            problems.append(f"{run_id}: paused run without run.paused/dashboard.hitl_resumed")
        elif run_id not in paused_ids and "run.paused" in names:
            problems.append(f"{run_id}: unexpected pause")
        per_kind["paused" if run_id in paused_ids else "auto"].add(len(seqs))
        if len(problems) >= 10:
            break
    for kind, counts in per_kind.items():
        if len(counts) > 1:
            problems.append(f"{kind} runs have differing event counts: {sorted(counts)}")
    if problems:
        raise AssertionError("verification failed:\n  " + "\n  ".join(problems))
    return {"statuses": statuses, "events_in_db": events_total,
            "events_per_run": {k: sorted(v) for k, v in per_kind.items()}}


async def run_ours(n: int, db_file: Path, *, workers: int, in_flight: int, max_batch: int,
                   resume_mode: str, database_url: str | None = None) -> dict[str, Any]:
    """``database_url``: a PostgreSQL server's database to create and use instead of ``db_file``."""
    url = database_url or f"sqlite+aiosqlite:///{db_file}"
    await create_database_if_missing(url)
    db = open_engine(url)
    await migrate(db)
    bus = InProcessBus()
    # The service's runtime, with the schedules' alarm off: only the engine is driven.
    settings = Settings(data_dir=db_file.parent, engine_workers=workers, commit_batch_max=max_batch,
                        scheduler_enabled=False)
    async with open_runtime(db, bus, load_catalog(SHIPPED_CONFIG_DIR), settings) as runtime:
        engine = runtime.engine
        tune_garbage_collector()  # as `autopilot serve` does
        deadline = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
        run_ids: list[str] = [""] * n
        expected_pauses = len(range(0, n, PAUSE_EVERY))
        paused_seen: list[str] = []
        resumed: list[str] = []
        human_sem = asyncio.Semaphore(in_flight)

        async def approve(run_id: str) -> None:
            async with human_sem:
                await engine.resume(TENANT, WORKFLOW, run_id, {"decision": "approve"}, actor="user:bench")
            resumed.append(run_id)

        next_i = 0

        async def submitter() -> None:
            nonlocal next_i
            while next_i < n:
                i = next_i
                next_i += 1
                run = await engine.start_run(StartRequest(TENANT, WORKFLOW, make_exception(i, deadline),
                                                          actor="user:bench", trigger_type="api"))
                run_ids[i] = run.id

        submitters = min(in_flight, n)
        if resume_mode == "pipelined":
            # The human approves each run as soon as its pause is committed: the bus publishes
            # ``run.paused`` only after the transaction that wrote it.
            pauses = bus.subscribe(["run.paused"], tenant_id=TENANT, maxsize=n + 1)

            async def human() -> None:
                approvals: list[asyncio.Task[None]] = []
                async for event in pauses:
                    paused_seen.append(event.run_id)
                    approvals.append(asyncio.create_task(approve(event.run_id)))
                    if len(paused_seen) == expected_pauses:
                        break
                await asyncio.gather(*approvals)

            start = time.perf_counter()
            human_task = asyncio.create_task(human())
            await asyncio.gather(*(submitter() for _ in range(submitters)))
            submit_seconds = time.perf_counter() - start
            try:
                await asyncio.wait_for(human_task, timeout=120 + n / 100)
            except TimeoutError:
                raise AssertionError(f"saw only {len(paused_seen)} of {expected_pauses} pauses") from None
            await engine.drain()
            seconds = time.perf_counter() - start
            pauses.close()
        else:
            start = time.perf_counter()
            await asyncio.gather(*(submitter() for _ in range(submitters)))
            submit_seconds = time.perf_counter() - start
            await engine.drain()  # every run has now paused or completed
            paused_seen = [run_ids[i] for i in range(0, n, PAUSE_EVERY)]
            await asyncio.gather(*(approve(run_id) for run_id in paused_seen))
            await engine.drain()
            seconds = time.perf_counter() - start
        committer = engine.committer
        figures = {"batches": committer.batches, "writes": committer.writes, "events": committer.events}
    await db.dispose()

    paused_ids = {run_ids[i] for i in range(0, n, PAUSE_EVERY)}
    if set(paused_seen) != paused_ids or len(resumed) != len(paused_ids):
        raise AssertionError(f"expected {len(paused_ids)} pauses, saw {len(paused_seen)}, resumed {len(resumed)}")
    committed = await read_database(database_url) if database_url else read_sqlite(db_file)
    checked = verify(committed, run_ids, paused_ids)
    if checked["events_in_db"] != figures["events"]:
        raise AssertionError(f"committer counted {figures['events']} events, database has {checked['events_in_db']}")
    return {
        "runs": n, "paused_and_resumed": len(resumed), "seconds": round(seconds, 3),
        "runs_per_s": round(n / seconds, 1), "submit_seconds": round(submit_seconds, 3),
        "events": checked["events_in_db"], "events_per_run": checked["events_per_run"],
        "statuses": checked["statuses"], "commit_batches": figures["batches"],
        "commit_writes": figures["writes"],
        "writes_per_batch": round(figures["writes"] / max(figures["batches"], 1), 1),
    }


def run_baseline(n: int, db_file: Path) -> dict[str, Any] | str:
    """The LangGraph figure, or why it was skipped."""
    try:
        from bench.baseline_langgraph import run_langgraph_baseline
    except ImportError as exc:
        return (f"LangGraph baseline skipped: {exc}. It is an optional extra: "
                "pip install -e '.[bench]'")
    return asyncio.run(run_langgraph_baseline(n, str(db_file), pause_every=PAUSE_EVERY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="runs through our pipeline")
    parser.add_argument("--baseline-n", type=int, default=1000, help="runs through the LangGraph baseline")
    parser.add_argument("--raw-n", type=int, default=20000, help="runs for the raw SQLite ceiling")
    parser.add_argument("--workers", type=int, default=256, help="engine workers")
    parser.add_argument("--in-flight", type=int, default=None,
                        help="concurrent submissions (and approvals); default: --workers")
    parser.add_argument("--max-batch", type=int, default=1000, help="writes per group commit at most")
    parser.add_argument("--resume-mode", choices=("phased", "pipelined"), default="phased",
                        help="approve all pauses once every run has paused or ended (default), "
                             "or each one as soon as its pause is committed")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the LangGraph baseline")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory with the databases")
    parser.add_argument("--database-url", help="run ours on this PostgreSQL database instead of an SQLite file "
                        "(created if missing; it should be empty), e.g. "
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_pipeline")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="autopilot-bench-"))
    print(f"databases in {tmp}", file=sys.stderr)
    try:
        result = measure(args, tmp)
    except BaseException:
        print(f"benchmark failed; databases kept in {tmp}", file=sys.stderr)
        raise
    if args.keep:
        print(f"databases kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Run all three measurements, print the table, return the figures."""
    in_flight = args.in_flight or args.workers
    database = make_url(args.database_url).get_backend_name() if args.database_url else "sqlite"
    print(f"ours: {args.n} runs on {database}, {args.workers} workers, {in_flight} in flight ...", file=sys.stderr)
    database_url = None
    if args.database_url:  # a database of this run's own: one left by an earlier run would skew it
        given = make_url(args.database_url)
        database_url = given.set(database=f"{given.database}_{os.getpid()}").render_as_string(hide_password=False)
    try:
        ours = asyncio.run(run_ours(args.n, tmp / "ours.sqlite", workers=args.workers, in_flight=in_flight,
                                    max_batch=args.max_batch, resume_mode=args.resume_mode,
                                    database_url=database_url))
    finally:
        if database_url:
            server = make_url(database_url)
            asyncio.run(drop_database(server.set(database="").render_as_string(hide_password=False).rstrip("/"),
                                      server.database or ""))
    print(f"ours: {ours['runs_per_s']:,.0f} runs/s, all {args.n} runs verified", file=sys.stderr)

    if args.skip_baseline:
        baseline: dict[str, Any] | str = "LangGraph baseline skipped (--skip-baseline)"
    else:
        print(f"LangGraph baseline: {args.baseline_n} runs ...", file=sys.stderr)
        baseline = run_baseline(args.baseline_n, tmp / "langgraph.sqlite")
    if isinstance(baseline, str):
        print(baseline, file=sys.stderr)
    print(f"raw sqlite3 ceiling: {args.raw_n} runs ...", file=sys.stderr)
    raw = run_raw_sqlite_ceiling(args.raw_n, str(tmp / "raw.sqlite"))

    langgraph = baseline if isinstance(baseline, dict) else None
    lg_rate = langgraph["runs_per_s"] if langgraph else None
    ratio = round(ours["runs_per_s"] / lg_rate, 1) if lg_rate else None
    of_raw = round(ours["runs_per_s"] / raw["runs_per_s"], 3)
    rate_met = ours["runs_per_s"] >= TARGET_RUNS_PER_S
    ratio_met = None if ratio is None else ratio >= TARGET_RATIO
    met = False if not rate_met else ratio_met  # None: rate met, ratio unknown (no baseline)

    def row(name: str, figures: dict[str, Any] | None) -> str:
        if figures is None:
            return f"{name:34} {'-':>7} {'-':>8} {'skipped':>9}"
        return f"{name:34} {figures['runs']:>7} {figures['seconds']:>8.2f} {figures['runs_per_s']:>9,.0f}"

    print()
    print(f"{'':34} {'runs':>7} {'seconds':>8} {'runs/s':>9}")
    print(row(f"ours (PipelineEngine, {database})", ours))
    print(row("LangGraph + AsyncSqliteSaver", langgraph))
    print(row("raw sqlite3, 1 txn per run", raw))
    print()
    print(f"ours: {ours['events']:,} events committed and verified; {ours['commit_batches']:,} commit batches "
          f"for {ours['commit_writes']:,} writes ({ours['writes_per_batch']} writes/batch); "
          f"{ours['paused_and_resumed']:,} runs paused and approved")
    print(f"ours / LangGraph:     {f'{ratio}x' if ratio else 'n/a (baseline skipped)'}")
    print(f"ours / raw ceiling:   {of_raw:.0%}")
    verdict = {True: "MET", False: "NOT MET", None: "UNDECIDED (no baseline)"}[met]
    print(f"target \"2,000 runs/s durable, 30x baseline\": {verdict} "
          f"(rate {'met' if rate_met else 'not met'}; ratio "
          f"{'n/a' if ratio_met is None else 'met' if ratio_met else 'not met'})")

    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": args.n, "baseline_n": args.baseline_n if lg_rate else None, "raw_n": args.raw_n,
        "workers": args.workers, "in_flight": in_flight, "max_batch": args.max_batch,
        "resume_mode": args.resume_mode, "database": database,
        "runs_per_s": {"ours": ours["runs_per_s"], "langgraph": lg_rate, "raw_sqlite": raw["runs_per_s"]},
        "seconds": {"ours": ours["seconds"], "ours_submit": ours["submit_seconds"],
                    "langgraph": langgraph["seconds"] if langgraph else None, "raw_sqlite": raw["seconds"]},
        "ratio_vs_langgraph": ratio, "fraction_of_raw": of_raw,
        "events": ours["events"], "events_per_run": ours["events_per_run"],
        "commit_batches": ours["commit_batches"], "commit_writes": ours["commit_writes"],
        "paused_and_resumed": ours["paused_and_resumed"],
        "baseline_skipped": baseline if isinstance(baseline, str) else None,
        "target": {"runs_per_s": TARGET_RUNS_PER_S, "ratio": TARGET_RATIO, "met": met},
        "cpus": os.cpu_count(),
        "versions": {
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": _version("SQLAlchemy"), "aiosqlite": _version("aiosqlite"),
            "langgraph": _version("langgraph"),
            "langgraph_checkpoint_sqlite": _version("langgraph-checkpoint-sqlite"),
        },
    }

if __name__ == "__main__":
    main()
