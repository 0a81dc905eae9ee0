"""Creating a PostgreSQL database that does not exist yet, so one command can take a fresh
server to a migrated cluster. Migrations need the database to exist; ``CREATE DATABASE`` cannot
run inside it, so this connects to the server's ``postgres`` maintenance database instead."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

MAINTENANCE_DATABASE = "postgres"


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


async def create_database_if_missing(url: str) -> bool:
    """Create the database ``url`` names unless it exists; ``True`` if this call created it.
    Other backends pass through (an SQLite file is created when it is first opened). Two callers
    racing both succeed: the loser finds it created."""
    if not is_postgresql(url):
        return False
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError(f"{target.render_as_string(hide_password=True)} names no database")
    admin = create_async_engine(target.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            if found:
                return False
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            try:
                await conn.execute(text(f"CREATE DATABASE {quoted}"))
            except DBAPIError as exc:
                if "already exists" in str(exc.orig):
                    return False
                raise
            return True
    finally:
        await admin.dispose()
