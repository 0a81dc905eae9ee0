"""Shared fixtures: a real database per backend, the shipped catalog, a controllable clock,
and a guard that fails any connection leaving this machine."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.catalog import Catalog, load_catalog
from config.settings import SHIPPED_CONFIG_DIR
from store.database import migrate, open_engine
from tests.postgres_schemas import postgres_schema


def _is_local(address: object) -> bool:
    if isinstance(address, str):  # a unix socket path
        return True
    host = address[0] if isinstance(address, tuple) else None
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach beyond loopback: the LLM endpoint and tools are faked locally."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(real: Callable[[socket.socket, Any], Any]) -> Callable[[socket.socket, Any], Any]:
        def connect(self: socket.socket, address: Any) -> Any:
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
                raise ConnectionRefusedError(f"tests may not reach the network: {address!r}")
            return real(self, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database on each backend; PostgreSQL gets a schema of its own, dropped after."""
    if request.param == "sqlite":
        engine = open_engine(f"sqlite+aiosqlite:///{tmp_path / 'autopilot.db'}")
        await migrate(engine)
        yield engine
        await engine.dispose()
        return
    async with postgres_schema() as engine:
        yield engine


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(f"sqlite+aiosqlite:///{tmp_path / 'autopilot.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(SHIPPED_CONFIG_DIR)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
