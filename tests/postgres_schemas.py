"""PostgreSQL for the tests: a migrated schema of its own per test in the ``test`` database, and a
second engine on the same schema, standing for another server process's connections."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.database import migrate, open_engine
from store.event_feed import CHANNEL_OPTION

POSTGRES_URL = os.environ.get(
    "AUTOPILOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def postgres_unreachable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None when the server answers."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return None
    except OSError as exc:
        return f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})"


@asynccontextmanager
async def postgres_schema(*, own_channel: bool = False) -> AsyncIterator[AsyncEngine]:
    """A migrated schema of its own, dropped after; skips the test, saying why, when PostgreSQL
    is not there. ``own_channel``: notifications on a channel of its own too (channels are per
    database, so bus tests running side by side would wake each other)."""
    if reason := postgres_unreachable():
        pytest.skip(reason)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = open_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = open_engine(POSTGRES_URL, **_on_schema(name, own_channel))
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def second_process(db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Another engine (its own connections, as another server process has) on ``db``'s schema
    and notification channel."""
    async with db.connect() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
    other = open_engine(POSTGRES_URL, **_on_schema(schema, CHANNEL_OPTION in db.get_execution_options()))
    try:
        yield other
    finally:
        await other.dispose()


def _on_schema(name: str, own_channel: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"connect_args": {"server_settings": {"search_path": name}}}
    if own_channel:
        options["execution_options"] = {CHANNEL_OPTION: f"events_{name}"}
    return options
