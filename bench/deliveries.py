"""Webhook deliveries beside the pipeline: how many a process sends per second, how long from
commit to receipt, and what they cost the pipeline.

One invocation, each phase on a fresh SQLite file with the service's runtime (engine, committer,
delivery worker), ``--in-flight`` exceptions submitted at once (none over the approval amount):

1. **off**: no endpoint and no delivery worker; the pipeline's runs per second (start to
   drained). The runs' playbook (``payment-card-declined``) still writes its notify step's
   delivery, which is part of the pipeline now.
2. **on**: a receiver in its own process (``bench/delivery_receiver.py``) gets two deliveries per
   run: the notify step's, on acme's ``email`` channel declared as a ``webhook`` channel at the
   receiver, and one for ``run.completed`` from the tenant's endpoint subscribed to it. The same
   runs; the pipeline's runs per second, then the wait until every owed delivery has arrived.
   ``deliveries_per_s`` is the deliveries over the time from the first submission to the last
   arrival; the receiver times each from its message's ``timestamp`` (stamped just before the
   commit) to its arrival; ``lost`` is owed deliveries that never arrived (after ``--settle`` s).

``--rounds`` alternates off and on that many times; the figures are the medians. The last line
is one JSON object with ``deliveries_per_s``, ``commit_to_receipt_p99_ms``,
``pipeline_ratio_on_off`` and ``lost``, beside the issue's targets.

Run: ``python -m bench.deliveries [--n 10000] [--in-flight 256] [--rounds 2] [--settle 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.delivery_receiver import start_receiver
from bench.pipeline_throughput import TENANT, WORKFLOW, make_exception
from config.catalog import load_catalog
from config.settings import Settings
from eventbus import InProcessBus
from pipeline.gc_tuning import tune_garbage_collector
from pipeline.runtime import open_runtime
from pipeline.start_request import StartRequest
from store.database import migrate, open_engine
from tests.config_copies import config_with

TARGETS = {"deliveries_per_s": 1000.0, "pipeline_ratio_on_off": 0.85, "lost": 0}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def phase(n: int, in_flight: int, folder: Path, receiver: str | None, settle: float) -> dict[str, Any]:
    db = open_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    await migrate(db)
    config = config_with(folder / "config")
    if receiver is not None:
        (config / "channels.yaml").write_text(
            f"channels:\n  - {{id: email, tenant: {TENANT}, kind: webhook, url: '{receiver}/hook'}}\n")
    settings = Settings(data_dir=folder, scheduler_enabled=False, delivery_allowed_addresses=["127.0.0.1/32"],
                        delivery_enabled=receiver is not None)
    figures: dict[str, Any] = {}
    async with open_runtime(db, InProcessBus(), load_catalog(config), settings) as runtime:
        tune_garbage_collector()
        if receiver is not None:
            await runtime.webhooks.create(TENANT, "user:bench", url=f"{receiver}/hook", topics=["run.completed"],
                                          description="bench", enabled=True)
        deadline = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
        next_i = 0

        async def submitter() -> None:
            nonlocal next_i
            while next_i < n:
                i, next_i = next_i, next_i + 1
                exception = make_exception(i * 10 + 1, deadline)  # never a multiple of ten: no approval
                await runtime.engine.start_run(StartRequest(TENANT, WORKFLOW, exception, actor="user:bench",
                                                            trigger_type="api"))

        started = time.perf_counter(), time.time()
        await asyncio.gather(*(submitter() for _ in range(min(in_flight, n))))
        await runtime.engine.drain()
        seconds = time.perf_counter() - started[0]
        figures["runs_per_s"] = round(n / seconds, 1)
        if receiver is not None:
            figures.update(await _arrivals(receiver, 2 * n, started[1], settle))
    await db.dispose()
    return figures


async def _arrivals(receiver: str, owed: int, started: float, settle: float) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        give_up = time.monotonic() + settle
        while True:
            async with session.get(f"{receiver}/stats") as response:
                stats = await response.json()
            if stats["distinct"] >= owed or time.monotonic() > give_up:
                break
            await asyncio.sleep(0.1)
        async with session.post(f"{receiver}/reset"):
            pass
    return {
        "owed": owed, "received": stats["received"], "lost": owed - stats["distinct"],
        "deliveries_per_s": round(stats["distinct"] / max(stats["last"] - started, 1e-9), 1),
        "commit_to_receipt_p50_ms": stats["p50_ms"], "commit_to_receipt_p99_ms": stats["p99_ms"],
    }


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    process, receiver = await start_receiver()
    offs: list[dict[str, Any]] = []
    ons: list[dict[str, Any]] = []
    try:
        for round_ in range(args.rounds):
            for name, url in (("off", None), ("on", receiver)):
                folder = tmp / f"{name}-{round_}"
                folder.mkdir()
                figures = await phase(args.n, args.in_flight, folder, url, args.settle)
                (ons if url else offs).append(figures)
                say(f"round {round_ + 1}, deliveries {name}: {figures}")
    finally:
        process.terminate()
    off = statistics.median(f["runs_per_s"] for f in offs)
    on = statistics.median(f["runs_per_s"] for f in ons)
    result = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "n": args.n, "in_flight": args.in_flight,
        "rounds": args.rounds, "deliveries_per_run": 2,
        "runs_per_s_off": off, "runs_per_s_on": on, "pipeline_ratio_on_off": round(on / off, 3),
        "deliveries_per_s": statistics.median(f["deliveries_per_s"] for f in ons),
        "commit_to_receipt_p50_ms": statistics.median(f["commit_to_receipt_p50_ms"] for f in ons),
        "commit_to_receipt_p99_ms": statistics.median(f["commit_to_receipt_p99_ms"] for f in ons),
        "lost": sum(f["lost"] for f in ons), "owed": sum(f["owed"] for f in ons),
        "received": sum(f["received"] for f in ons),
    }
    result["targets"] = {
        "deliveries_per_s": {"target": ">= 1000", "met": result["deliveries_per_s"] >= 1000},
        "pipeline_ratio_on_off": {"target": ">= 0.85", "met": result["pipeline_ratio_on_off"] >= 0.85},
        "lost": {"target": "0", "met": result["lost"] == 0},
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="runs per phase")
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs; figures are medians")
    parser.add_argument("--settle", type=float, default=60, help="seconds to wait for the last deliveries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autopilot-deliveries-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
