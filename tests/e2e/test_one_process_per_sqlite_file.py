"""A second `autopilot serve` on the same SQLite file refuses to start, says which process holds
it and what to do instead, and leaves the first one serving."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest

from tests.e2e.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e


async def test_a_second_server_on_the_same_sqlite_file_refuses(tmp_path):
    first = ServerProcess(tmp_path / "data")
    await first.start()
    try:
        assert first.process is not None
        second = subprocess.run(
            [sys.executable, "-m", "api.cli", "--data-dir", str(first.data_dir), "serve", "--port", str(free_port())],
            env=first.env, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1, second.stderr
        assert f"another autopilot process (pid {first.process.pid}) is serving" in second.stderr
        assert "AUTOPILOT_DATABASE_URL" in second.stderr
        async with aiohttp.ClientSession() as session, session.get(f"{first.base}/readyz") as response:
            assert response.status == 200  # the first one still serves
    finally:
        assert first.stop() == 0
    await first.start()  # the lock went with its holder
    first.stop()
