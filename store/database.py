"""Opening the database, applying migrations, and telling whether it is ready."""

from __future__ import annotations

from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from store.sqlite_threads import attach
from store.types import dumps_json

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names; ``None`` for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_engine(url: str, **options: object) -> AsyncEngine:
    """An async engine; SQLite gets WAL, NORMAL sync and a busy timeout, its folder created, and
    threads of its own for hot reads and group commits (``store/sqlite_threads.py``)."""
    options.setdefault("json_serializer", dumps_json)
    options.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if path is not None:
            attach(engine, url, _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", 10)
    return create_async_engine(url, **options)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


MIGRATION_LOCK = 0x6175746F6D6967  # "automig": any fixed key of our own
"""The advisory lock PostgreSQL migrations take, so servers started at once against a fresh
database (several machines of one deploy) migrate one after the other instead of racing."""


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the same Alembic scripts on every backend. On
    PostgreSQL the DDL is transactional and runs under a transaction-level advisory lock: a
    second process waits, then finds the schema current."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def schema_status(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """(revision in the database, newest revision shipped); equal when migrations are current."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        current = await conn.run_sync(_current_revision)
    return current, head
