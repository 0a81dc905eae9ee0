"""The reads' database of ``bench.http``: ``--runs`` stored runs made from a few real ones.

The engine makes ``--template-runs`` real runs in a file of their own (one in ten paused, half of
those approved and completed, the rest left awaiting approval); ``sqlite3`` then copies them,
runs and events, into the server's fresh database under new ids spread over the past 30 days,
with their times and every mention of the run id in the JSON rewritten. It copies rather than
ingests because the reads need many stored runs, not the ingest path again: 100,000 runs through
the server (about 1,800 runs/s on 2 cores) would take about a minute before every read phase,
while the copy writes rows the engine itself made at sqlite3's pace (20,000 runs and 215,000
events in 3.9 s, template included). Other tables with rows naming the template's runs are not
copied; a warning names them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.pipeline_throughput import TENANT, WORKFLOW, make_exception
from config.catalog import load_catalog
from config.settings import SHIPPED_CONFIG_DIR, Settings
from eventbus import InProcessBus
from pipeline.clock import IdFactory
from pipeline.runtime import open_runtime
from pipeline.start_request import StartRequest
from store.database import migrate, open_engine
from store.types import sqlite_timestamp

SEED_SPAN = timedelta(days=30)


def say(line: str) -> None:
    """A progress line on stderr, where every phase of ``bench.http`` reports; stdout is the result's."""
    print(line, file=sys.stderr, flush=True)


def database_url(data_dir: Path) -> str:
    """The database ``serve`` opens for ``data_dir`` (SQLite there unless configured otherwise)."""
    return Settings(data_dir=data_dir).resolved_database_url


async def make_template(path: Path, count: int) -> None:
    """``count`` real runs from the engine: one in ten paused, half of those approved."""
    db = open_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(db)
    deadline = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
    settings = Settings(data_dir=path.parent, scheduler_enabled=False)
    async with open_runtime(db, InProcessBus(), load_catalog(SHIPPED_CONFIG_DIR), settings) as runtime:
        engine = runtime.engine
        started = await asyncio.gather(*(engine.start_run(StartRequest(
            TENANT, WORKFLOW, {**make_exception(i, deadline), "source_id": f"seed-{i}"}, actor="user:bench",
            trigger_type="api")) for i in range(count)))
        await engine.drain()
        paused = [run.id for run in started if run.status == "paused"]
        await asyncio.gather(*(engine.resume(TENANT, WORKFLOW, run_id, {"decision": "approve"}, actor="user:lead")
                               for run_id in paused[::2]))
        await engine.drain()
    await db.dispose()


def per_run_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables besides runs and events with rows naming the template's runs: the copy leaves them out."""
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [name for name in names if name not in ("runs", "events")
            and any(col[1] == "run_id" for col in conn.execute(f'PRAGMA table_info("{name}")'))
            and conn.execute(f'SELECT count(*) FROM "{name}" WHERE run_id IN (SELECT id FROM runs)').fetchone()[0]]


def shifted(value: str, by: timedelta) -> str:
    return sqlite_timestamp(datetime.fromisoformat(value).replace(tzinfo=UTC) + by)


def copies(template: list[tuple[dict[str, Any], list[dict[str, Any]]]], count: int,
           ids: list[str]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``count`` runs (and their events) made from ``template`` in turn, under ``ids`` (oldest
    first), created evenly over ``SEED_SPAN`` up to now."""
    first = datetime.now(UTC) - SEED_SPAN
    for i, run_id in enumerate(ids):
        run, events = template[i % len(template)]
        old_id = run["id"]
        by = first + SEED_SPAN * i / count - datetime.fromisoformat(run["created_at"]).replace(tzinfo=UTC)
        new = {k: v.replace(old_id, run_id) if isinstance(v, str) else v for k, v in run.items()}
        new.update(created_at=shifted(run["created_at"], by), updated_at=shifted(run["updated_at"], by))
        yield new, [{**{k: v.replace(old_id, run_id) if isinstance(v, str) else v for k, v in e.items()},
                     "created_at": shifted(e["created_at"], by)} for e in events]


def read_template(path: Path) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each run of the template file as its row and its events' rows, as stored."""
    source = sqlite3.connect(path)
    source.row_factory = sqlite3.Row
    try:
        events: dict[str, list[dict[str, Any]]] = {}
        for row in source.execute("SELECT * FROM events ORDER BY id"):
            events.setdefault(row["run_id"], []).append(dict(row))
        if left_out := per_run_tables(source):
            say(f"  seeding copies runs and events only; the engine also wrote per-run rows to {left_out}")
        return [(dict(row), events.get(row["id"], [])) for row in source.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        source.close()


def spread_ids(count: int) -> list[str]:
    """``count`` run ids as the engine makes them, made as if over the past ``SEED_SPAN``."""
    now_ms, step_ms = time.time() * 1000, SEED_SPAN.total_seconds() * 1000 / count
    at = [0]
    make = IdFactory(lambda: at[0])
    ids = []
    for i in range(count):
        at[0] = int(now_ms - (count - i) * step_ms)
        ids.append(make("run"))
    return ids


def insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     [[row[c] for c in columns] for row in rows])


def copy_runs(template_file: Path, target: Path, count: int) -> list[str]:
    """Write ``count`` copies of the template's runs into ``target``; their ids, oldest first."""
    ids = spread_ids(count)
    next_event_id = iter(range(1, 1 << 62)).__next__
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA synchronous=OFF")
    runs: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    with conn:
        for run, run_events in copies(read_template(template_file), count, ids):
            runs.append(run)
            events += [{**e, "id": next_event_id()} for e in run_events]
            if len(runs) == 2000 or run["id"] == ids[-1]:
                insert(conn, "runs", runs)
                insert(conn, "events", events)
                runs, events = [], []
    conn.close()
    return ids


async def seed(data_dir: Path, count: int, template_count: int) -> dict[str, Any]:
    """The reads' database: ``count`` runs copied from ``template_count`` real ones."""
    started = time.monotonic()
    template_file = data_dir.parent / "template.sqlite"
    await make_template(template_file, template_count)
    db = open_engine(database_url(data_dir))
    await migrate(db)
    await db.dispose()
    ids = copy_runs(template_file, Path(database_url(data_dir).split("///", 1)[1]), count)
    with sqlite3.connect(f"file:{data_dir / 'autopilot.db'}?mode=ro", uri=True) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    seconds = round(time.monotonic() - started, 1)
    say(f"seeded {count:,} runs ({statuses}) and {events:,} events in {seconds} s")
    return {"ids": ids, "statuses": statuses, "events": events, "seconds": seconds}
