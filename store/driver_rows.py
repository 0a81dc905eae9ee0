"""Bulk inserts that skip SQLAlchemy's per-row bind processing.

Per-row parameter processing (JSON, datetimes) in the event loop was most of the write path's
cost on SQLite, and 15% of a server's CPU on PostgreSQL (py-spy, ``bench/scaleout.py``). Here
the SQL is generated from the same ``Table``, each value is converted once by the column's type
(JSON serialised by ``dumps_json``; times as SQLite's fixed-width text, or left to asyncpg), and
the rows go straight to the driver's ``executemany`` inside the connection's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import CursorResult
from sqlalchemy.types import JSON

from store.types import UTCDateTime, aware_utc, dumps_json, sqlite_timestamp

Convert = Callable[[Any], Any]


def _timestamps(store: Convert) -> Convert:
    """A converter remembering its last value: the events of one write share one timestamp."""
    last: list[Any] = [None, None]

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if value is not last[0]:
            last[:] = [value, store(value)]
        return last[1]

    return convert


def _converter(column_type: Any, dialect: str) -> Convert | None:
    if isinstance(column_type, UTCDateTime):
        return _timestamps(sqlite_timestamp if dialect == "sqlite" else aware_utc)
    if isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON):
        return lambda v: None if v is None else dumps_json(v)
    return None


def _tuples(
    table: Table, columns: tuple[str, ...], keys: tuple[str, ...], rows: Sequence[dict[str, Any]],
    dialect: str = "sqlite",
) -> list[tuple[Any, ...]]:
    """Each row's values for ``keys``, converted as ``columns`` (the same order) store them."""
    converting = [
        (position, convert)
        for position, name in enumerate(columns)
        if (convert := _converter(table.c[name].type, dialect)) is not None
    ]
    take = itemgetter(*keys)
    out = []
    for row in rows:
        values = list(take(row)) if len(keys) > 1 else [take(row)]
        for position, convert in converting:
            values[position] = convert(values[position])
        out.append(tuple(values))
    return out


_unnest_statements: dict[tuple[str, str, tuple[str, ...]], str] = {}
"""PostgreSQL's statements per (kind, table, columns), built once."""


def _statement(key: tuple[str, str, tuple[str, ...]], build: Callable[[], str]) -> str:
    sql = _unnest_statements.get(key)
    if sql is None:
        sql = _unnest_statements[key] = build()
    return sql


def _is_asyncpg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg"


def _arrays(conn: Connection, table: Table, columns: tuple[str, ...]) -> str:
    """``$1::<type>[], $2::<type>[], …``: one array parameter per column, typed as the column."""
    return ", ".join(
        f"${i}::{table.c[name].type.compile(dialect=conn.dialect)}[]" for i, name in enumerate(columns, 1)
    )


def _columnwise(
    table: Table, columns: tuple[str, ...], keys: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> tuple[list[Any], ...]:
    """The rows' values as one list per column, the parameters of an unnest statement."""
    values = _tuples(table, columns, keys, rows, "postgresql")
    return tuple(list(column) for column in zip(*values, strict=True))


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    names = tuple(rows[0])
    if conn.dialect.name == "sqlite":
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        conn.exec_driver_sql(sql, _tuples(table, names, names, rows))
    elif _is_asyncpg(conn):
        # One statement for every row: an array per column, unnested. As many single-row executions
        # (executemany) each paid PostgreSQL's per-statement cost, and a run writes a dozen rows.
        insert = _statement(("insert", table.name, names), lambda: (
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({_arrays(conn, table, names)})"
        ))
        conn.exec_driver_sql(insert, _columnwise(table, names, names, rows))
    else:
        conn.execute(table.insert(), list(rows))


def update_rows(
    conn: Connection, table: Table, where: dict[str, str], rows: Sequence[dict[str, Any]], core: Any
) -> int:
    """Set every other key of each row on the row matching ``where`` (column -> row key);
    return how many rows changed in all, so a caller can tell a guard that did not match.

    ``core`` is the equivalent Core statement, binding ``b_<column>`` for each ``where``
    column, for backends that take the general path.
    """
    sets = tuple(k for k in rows[0] if k not in where.values())
    columns, keys = sets + tuple(where), sets + tuple(where.values())
    if _is_asyncpg(conn):
        # One statement for the batch, joined on the guard. A run appears at most once per batch
        # (each write is built from a committed read), so the count of rows matched is the count
        # of guards that held, as with one statement per row.
        update = _statement(("update", table.name, keys), lambda: (
            f"UPDATE {table.name} SET {', '.join(f'{n} = v.{n}' for n in sets)} "
            f"FROM unnest({_arrays(conn, table, columns)}) AS v({', '.join(keys)}) "
            f"WHERE {' AND '.join(f'{table.name}.{col} = v.{key}' for col, key in where.items())}"
        ))
        updated = conn.exec_driver_sql(update, _columnwise(table, columns, keys, rows))
        return updated.rowcount
    if conn.dialect.name != "sqlite":
        total = 0
        for row in rows:
            params = {k: row[k] for k in sets} | {f"b_{col}": row[key] for col, key in where.items()}
            result: CursorResult[Any] = conn.execute(core, params)
            total += result.rowcount
        return total
    sql = (f"UPDATE {table.name} SET {', '.join(f'{n} = ?' for n in sets)} "
           f"WHERE {' AND '.join(f'{col} = ?' for col in where)}")
    result = conn.exec_driver_sql(sql, _tuples(table, columns, keys, rows))
    return result.rowcount
