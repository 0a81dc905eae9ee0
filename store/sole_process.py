"""One server process per SQLite file. SQLite serves one process well and several badly: each
would recover the other's runs, fire every schedule and claim every tool call in its own memory.
A second process on the same file refuses to start, saying which process holds it; scaling out
is PostgreSQL's job (``AUTOPILOT_DATABASE_URL``)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from store.database import sqlite_file


class DatabaseInUse(RuntimeError):
    """Another process serves this SQLite file."""


@contextmanager
def sole_process(url: str) -> Iterator[None]:
    """Hold the SQLite file's lock for as long as the block runs (an advisory ``flock`` on
    ``<file>.lock``, released by the kernel even when the process is killed); raise
    ``DatabaseInUse`` if another process holds it. Other databases pass through."""
    database = sqlite_file(url)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(database.with_name(database.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(lock, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DatabaseInUse(
                f"another autopilot process (pid {holder}) is serving {database}; SQLite serves one process. "
                "Stop it first, or run several processes on PostgreSQL (AUTOPILOT_DATABASE_URL)"
            ) from None
        os.ftruncate(lock, 0)
        os.pwrite(lock, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(lock)  # closing the descriptor releases the lock
