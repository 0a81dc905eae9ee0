"""`autopilot serve --processes N`: one command creates and migrates a PostgreSQL database, starts
N servers on consecutive ports that all answer with one truth, reports a server that dies,
stops them all on SIGTERM, and refuses several processes on one SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from api.cli import parser
from api.cluster import child_command
from config.settings import Settings
from tests.api.conftest import exception_body
from tests.e2e.cluster import Cluster as LocalCluster
from tests.e2e.cluster import consecutive_free_ports
from tests.e2e.server import SECRET, Client, token
from tests.fresh_database import database_exists, database_url, drop_database
from tests.postgres_schemas import postgres_unreachable

pytestmark = pytest.mark.e2e


@dataclass
class Cluster(LocalCluster):
    database: str = ""
    """The PostgreSQL database the cluster created, dropped after the test."""


@pytest.fixture
async def cluster_of(tmp_path: Path) -> AsyncIterator[object]:
    """Starts ``autopilot serve --processes N --create-database`` on a database that does not
    exist yet; kills what is left and drops the database afterwards."""
    if reason := postgres_unreachable():
        pytest.skip(reason)
    started: list[Cluster] = []

    async def start(processes: int) -> Cluster:
        name = f"cluster_{uuid.uuid4().hex[:10]}"
        assert not await database_exists(name)
        env = {**os.environ, "AUTOPILOT_DATABASE_URL": database_url(name), "AUTOPILOT_JWT_SECRET": SECRET}
        launched = LocalCluster.launch(processes, tmp_path / "data", tmp_path / f"cluster-{len(started)}.log", env)
        started.append(cluster := Cluster(launched.process, launched.ports, launched.log, name))
        return cluster

    yield start
    for cluster in started:
        cluster.stop(timeout=40)
        for pid in cluster.child_pids().values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await drop_database(cluster.database)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (exited, not yet reaped by the parent's parent) no longer serves
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


async def test_one_command_creates_the_database_and_serves_it_from_every_port_until_sigterm(cluster_of):
    cluster = await cluster_of(3)
    await cluster.ready()
    assert await database_exists(cluster.database)
    assert "created and migrated" in cluster.output()
    pids = cluster.child_pids()
    assert sorted(pids) == [0, 1, 2] and cluster.process.pid not in pids.values()

    first, _, last = (f"http://127.0.0.1:{port}" for port in cluster.ports)
    async with aiohttp.ClientSession() as session:
        ingest = Client(session, first, token())
        status, accepted = await ingest.call("POST", "/api/v1/exceptions",
                                             exception_body(source_id=f"cluster-{uuid.uuid4().hex}"))
        assert status == 202, accepted
        status, run = await Client(session, last, token()).call("GET", f"/api/v1/runs/{accepted['run_id']}")
        assert status == 200 and run["id"] == accepted["run_id"]  # ingested on one, read on another

    cluster.process.send_signal(signal.SIGTERM)
    assert cluster.process.wait(timeout=60) == 0, cluster.output()
    assert all(gone(pid) for pid in pids.values())
    for port in cluster.ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


async def test_a_process_that_dies_is_reported_and_the_others_keep_serving(cluster_of):
    cluster = await cluster_of(2)
    await cluster.ready()
    pids = cluster.child_pids()
    os.kill(pids[1], signal.SIGKILL)
    expected = f"process 1 (pid {pids[1]}, port {cluster.ports[1]}) exited with status -9; 1 of 2 still serve"
    deadline = time.monotonic() + 30
    while expected not in cluster.output() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert expected in cluster.output()
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{cluster.ports[0]}/readyz") as r:
        assert r.status == 200
    cluster.process.send_signal(signal.SIGTERM)
    assert cluster.process.wait(timeout=60) == 1  # stopped, but one of its processes had failed
    assert gone(pids[0])


def test_several_processes_on_one_sqlite_file_are_refused(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "AUTOPILOT_DATABASE_URL"}
    port = consecutive_free_ports(2)
    refused = subprocess.run(
        [sys.executable, "-m", "api.cli", "--data-dir", str(tmp_path / "data"), "serve",
         "--processes", "2", "--port", str(port)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2
    assert "--processes 2 needs PostgreSQL: an SQLite file serves one process" in refused.stderr
    assert "AUTOPILOT_DATABASE_URL" in refused.stderr
    assert not (tmp_path / "data" / "autopilot.db").exists()  # nothing was started or migrated


def test_only_the_first_process_feeds_the_demo_tenant():
    args = parser().parse_args(["--data-dir", "d", "serve", "--processes", "3", "--port", "9000", "--demo"])
    settings = Settings(data_dir=Path("d"), port=9000)
    commands = [child_command(args, settings, index) for index in range(3)]
    assert [command[command.index("--port") + 1] for command in commands] == ["9000", "9001", "9002"]
    assert ["--demo" in command for command in commands] == [True, False, False]
