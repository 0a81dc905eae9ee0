"""``autopilot serve --processes N``: a local cluster of N server processes on one PostgreSQL
database, on consecutive ports from ``--port``, supervised by this parent process.

Consecutive ports rather than one port shared with ``SO_REUSEPORT``: with a port each, a test,
a benchmark or a person can talk to one process at a time (ingest on A, resume on B) and knows
which process to kill to watch the others take its work over; ``SO_REUSEPORT`` spreads
connections by a hash the caller cannot choose. In production a load balancer gives the cluster
one address.

The parent migrates the database once before any child starts (N processes migrating a fresh
database at once would race), makes the token secret (so every child signs with the same one),
starts the children, forwards ``SIGTERM``/``SIGINT`` to them, and reports a child that exits.
It does not restart one: a local cluster is for trying scale-out, where killing a process and
watching the others take its work over is the point; production restarts with its own
supervisor (systemd, Kubernetes)."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType

from sqlalchemy.engine import make_url

from api.auth import signing_secret
from config.settings import Settings
from store.create_database import create_database_if_missing
from store.database import migrate, open_engine, schema_status, sqlite_file

STOP_TIMEOUT_SECONDS = 30.0
"""How long stopping children get before they are killed (each drains for up to 10 s)."""
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    index: int
    port: int
    process: subprocess.Popen[bytes]

    def describe(self) -> str:
        return f"process {self.index} (pid {self.process.pid}, port {self.port})"


def refusal(settings: Settings, processes: int) -> str | None:
    """Why this cluster cannot start, or ``None``."""
    url = settings.resolved_database_url
    if processes < 1:
        return f"--processes {processes}: give at least 1"
    if processes > 1 and (url.startswith("sqlite") or sqlite_file(url) is not None):
        return (f"--processes {processes} needs PostgreSQL: an SQLite file serves one process. Set "
                "AUTOPILOT_DATABASE_URL=postgresql+asyncpg://USER@HOST:5432/DATABASE (./dev cluster N uses the "
                "local server's 'autopilot' database)")
    if processes > 1 and settings.port == 0:
        return "--processes needs a fixed --port: the processes listen on consecutive ports from it"
    if settings.port + processes - 1 > 65535:
        return f"ports {settings.port}..{settings.port + processes - 1} go past 65535"
    return None


async def prepare_database(url: str, *, create: bool) -> tuple[bool, str | None]:
    """Create the database if asked and missing, then migrate it; (created, revision)."""
    created = await create_database_if_missing(url) if create else False
    engine = open_engine(url)
    try:
        await migrate(engine)
        current, _ = await schema_status(engine)
    finally:
        await engine.dispose()
    return created, current


def _die_with_parent() -> None:
    """In the child before it runs: the kernel sends it SIGTERM if the parent dies, even by
    SIGKILL, so a killed supervisor leaves no server behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_command(args: argparse.Namespace, settings: Settings, index: int) -> list[str]:
    """The ``autopilot serve`` of child ``index``. Only the first one feeds demo data, so a
    cluster's demo tenant gets one stream, not N."""
    command = [sys.executable, "-m", "api.cli"]
    if getattr(args, "settings", None):
        command += ["--settings", args.settings]
    if getattr(args, "data_dir", None):
        command += ["--data-dir", args.data_dir]
    command += ["serve", "--host", settings.host, "--port", str(settings.port + index)]
    if args.demo and index == 0:
        command += ["--demo", "--demo-interval", str(args.demo_interval)]
    return command


def run_cluster(args: argparse.Namespace, settings: Settings) -> int:
    """Start ``args.processes`` children and supervise them until they have all exited."""
    processes: int = args.processes
    if (reason := refusal(settings, processes)) is not None:
        print(f"autopilot serve: {reason}", file=sys.stderr)
        return 2
    url = settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    created, revision = asyncio.run(prepare_database(url, create=args.create_database))
    print(f"autopilot cluster: database {shown} {'created and ' if created else ''}migrated to {revision}",
          flush=True)
    signing_secret(settings)  # written once here, read by every child
    children: list[Child] = []
    for index in range(processes):
        process = subprocess.Popen(child_command(args, settings, index), preexec_fn=_die_with_parent,
                                   process_group=0)  # a terminal's Ctrl-C reaches the parent only
        children.append(Child(index, settings.port + index, process))
        print(f"autopilot cluster: {children[-1].describe()} on http://{settings.host}:{children[-1].port}",
              flush=True)
    return supervise(children)


def supervise(children: list[Child], stop_timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """Forward the first SIGTERM/SIGINT to every child as SIGTERM (a second one kills them),
    report each child that exits, and return 0 only if every child stopped cleanly when asked."""
    live = list(children)
    stop_deadline: float | None = None
    failed = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_deadline
        forward = signal.SIGTERM if stop_deadline is None else signal.SIGKILL
        if stop_deadline is None:
            stop_deadline = time.monotonic() + stop_timeout
            print(f"autopilot cluster: {signal.Signals(signum).name}, stopping {len(live)} process(es)",
                  file=sys.stderr, flush=True)
        for child in live:
            if child.process.poll() is None:
                child.process.send_signal(forward)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while live:
            for child in list(live):
                status = child.process.poll()
                if status is None:
                    continue
                live.remove(child)
                if stop_deadline is None or status != 0:
                    failed = True
                    print(f"autopilot cluster: {child.describe()} exited with status {status}; "
                          f"{len(live)} of {len(children)} still serve (it is not restarted)",
                          file=sys.stderr, flush=True)
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                for child in live:
                    print(f"autopilot cluster: {child.describe()} did not stop in {stop_timeout:.0f} s; killing it",
                          file=sys.stderr, flush=True)
                    child.process.kill()
                    child.process.wait()
                return 1
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0
