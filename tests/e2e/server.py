"""Runs the real ``autopilot serve`` as a child process for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt

SECRET = "e2e-secret-" + "z" * 32
ACTIVE = "received,triaged,policy_evaluated,resumed,resolving,resolved"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token(tenant: str = "acme", subject: str = "e2e") -> str:
    claims = {"sub": subject, "tenant": tenant, "roles": ["admin"], "exp": datetime.now(UTC) + timedelta(hours=1)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


class ServerProcess:
    def __init__(
        self, data_dir: Path, port: int | None = None, config_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config_dir = config_dir
        self.extra_env = extra_env or {}
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "AUTOPILOT_JWT_SECRET": SECRET, "AUTOPILOT_LOG_LEVEL": "INFO"}
        if self.config_dir is not None:
            env["AUTOPILOT_CONFIG_DIR"] = str(self.config_dir)
        return {**env, **self.extra_env}

    def cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "api.cli", "--data-dir", str(self.data_dir), *args]
        return subprocess.run(command, env=self.env, check=True, capture_output=True, text=True).stdout

    async def start(self) -> None:
        self.starts += 1
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir.parent / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "--data-dir", str(self.data_dir), "serve", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {log.name}")
                try:
                    async with session.get(f"{self.base}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError("server did not become ready in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, bearer: str) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {bearer}"}

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=json, headers=self.headers) as response:
            return response.status, await response.json()

    async def all_runs(self, status: str = "") -> list[dict[str, Any]]:
        runs, cursor = [], ""
        while True:
            query = f"?limit=500&status={status}" + (f"&cursor={cursor}" if cursor else "")
            _, page = await self.call("GET", "/api/v1/runs" + query)
            runs += page["items"]
            if not page["next_cursor"]:
                return runs
            cursor = page["next_cursor"]

    async def settled(self, timeout: float = 60) -> None:
        """Wait until no run is mid-pipeline (every one paused, waiting or ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await self.all_runs(ACTIVE):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("runs did not settle")

    async def events(self, run_id: str) -> list[dict[str, Any]]:
        _, page = await self.call("GET", f"/api/v1/runs/{run_id}/events?limit=1000")
        return page["items"]
