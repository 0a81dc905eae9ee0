"""Raw SQLite ceiling: how many "one transaction per run" commits SQLite allows.

Uses only stdlib ``sqlite3`` in WAL mode with ``synchronous=NORMAL``. Each run
is ONE transaction inserting one ``runs`` row plus ten ``events`` rows
(run_id, seq, topic, ~150-byte JSON payload, created_at). No framework, no
async, no business logic: this is the upper bound any pipeline persisting a
run per transaction (ours or the LangGraph baseline) can approach.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, topic TEXT NOT NULL,
    payload TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (run_id, seq));
"""
TOPICS = ("triage", "policy", "approval_gate", "resolution", "feedback")
EVENTS_PER_RUN = 10


def make_payload(run_id: str, seq: int) -> str:
    """A deterministic JSON payload of roughly 150 bytes."""
    return json.dumps({"run_id": run_id, "seq": seq, "severity": "high", "confidence": 0.95,
                       "playbook_id": "pb-retry-then-page", "ok": True,
                       "note": "step completed without error"}, separators=(",", ":"))


def run_raw_sqlite_ceiling(n: int, db_path: str) -> dict[str, Any]:
    """Commit ``n`` runs, one transaction each (1 run row + 10 event rows)."""
    conn = sqlite3.connect(db_path, isolation_level=None)  # explicit BEGIN/COMMIT
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        start = time.perf_counter()
        for i in range(n):
            run_id = f"run-{i}"
            now = time.time()
            events = [(run_id, seq, f"{TOPICS[seq // 2]}.{('started', 'finished')[seq % 2]}",
                       make_payload(run_id, seq), now) for seq in range(EVENTS_PER_RUN)]
            conn.execute("BEGIN")
            conn.execute("INSERT INTO runs (id, status, created_at) VALUES (?, ?, ?)",
                         (run_id, "completed", now))
            conn.executemany("INSERT INTO events (run_id, seq, topic, payload, created_at)"
                             " VALUES (?, ?, ?, ?, ?)", events)
            conn.execute("COMMIT")
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    return {"runs": n, "seconds": round(seconds, 3), "runs_per_s": round(n / seconds, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--db", default="/tmp/bench_raw.sqlite")
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):  # start from an empty database each time
        Path(args.db + suffix).unlink(missing_ok=True)
    print(json.dumps(run_raw_sqlite_ceiling(args.n, args.db)))
