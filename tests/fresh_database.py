"""Whole PostgreSQL databases for tests that start servers on their own (a cluster, several
processes): created on the test server and dropped after, with the sessions still on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from store.database import open_engine
from tests.postgres_schemas import POSTGRES_URL, postgres_unreachable


def database_url(name: str) -> str:
    """The URL of database ``name`` on the test server."""
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def _admin(sql: str, **params: str) -> object:
    """Run ``sql`` outside a transaction on the server's ``postgres`` database; its scalar, if any."""
    admin = open_engine(database_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            result = await conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        await admin.dispose()


async def database_exists(name: str) -> bool:
    return bool(await _admin("SELECT 1 FROM pg_database WHERE datname = :n", n=name))


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty database named ``<prefix>_<random>``; its URL. Skips without PostgreSQL."""
    if reason := postgres_unreachable():
        pytest.skip(reason)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        await drop_database(name)
