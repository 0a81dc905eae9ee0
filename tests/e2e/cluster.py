"""A local cluster (``autopilot serve --processes N``) as the cluster tests and the scale-out
benchmark start it: free consecutive ports for its processes, the children its parent printed,
waiting until every process answers, and stopping it."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CHILD = re.compile(r"autopilot cluster: process (\d+) \(pid (\d+), port \d+\) on")


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free now, below the kernel's range of
    ephemeral ports: a port from that range can be taken by any outgoing connection (a load
    generator's, a client's) between this check and the server's bind."""
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    ephemeral_from = int(ranges.read_text().split()[0]) if ranges.exists() else 32768
    for _ in range(50):
        first = random.randrange(10000, ephemeral_from - count)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                held.append(sock := socket.socket())
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def child_pids(log: Path) -> dict[int, int]:
    """Each child's pid by index, from what the cluster's parent printed to ``log``."""
    return {int(index): int(pid) for index, pid in CHILD.findall(log.read_text(errors="replace"))}


async def wait_ready(process: subprocess.Popen[bytes], ports: Iterable[int], log: Path, timeout: float) -> None:
    """Until every port answers ``/readyz`` with 200; fails, with the cluster's output, if the
    cluster exits or ``timeout`` seconds pass first."""
    deadline, waiting = time.monotonic() + timeout, set(ports)
    async with aiohttp.ClientSession() as session:
        while waiting and time.monotonic() < deadline:
            if process.poll() is not None:
                output = log.read_text(errors="replace")
                raise AssertionError(f"the cluster exited with {process.returncode}:\n{output}")
            for port in list(waiting):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            waiting.discard(port)
                except aiohttp.ClientError:
                    pass
            await asyncio.sleep(0.1)
    if waiting:
        raise AssertionError(f"ports {sorted(waiting)} never answered /readyz 200:\n{log.read_text(errors='replace')}")


@dataclass
class Cluster:
    """``autopilot serve --processes N --create-database`` running, its ports and its output."""

    process: subprocess.Popen[bytes]
    ports: list[int]
    log: Path

    @classmethod
    def launch(cls, processes: int, data_dir: Path, log: Path, env: dict[str, str], cwd: Path | None = None) -> Cluster:
        """Start N processes on free consecutive ports; their output (and the parent's) goes to ``log``."""
        first = consecutive_free_ports(processes)
        command = [sys.executable, "-m", "api.cli", "--data-dir", str(data_dir), "serve",
                   "--processes", str(processes), "--port", str(first), "--create-database"]
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        return cls(process, list(range(first, first + processes)), log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child_pids(self) -> dict[int, int]:
        """Each child's pid by index, from what the parent printed."""
        return child_pids(self.log)

    async def ready(self, timeout: float = 60) -> None:
        await wait_ready(self.process, self.ports, self.log, timeout)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the parent (which stops its children); killed if it has not ended in ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
