"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
EventId = BigInteger().with_variant(Integer(), "sqlite")


def dumps_json(value: Any) -> str:
    """The engines' JSON serializer: orjson, several times faster than ``json`` on the write path.
    A run's typed state (a msgspec ``Struct``) is written by msgspec."""
    if isinstance(value, msgspec.Struct):
        return _struct_json.encode(value).decode()
    return orjson.dumps(value, default=msgspec.to_builtins, option=orjson.OPT_NON_STR_KEYS).decode()


_struct_json = msgspec.json.Encoder()


def sqlite_timestamp(value: datetime) -> str:
    """How SQLite stores a time: naive UTC, fixed-width ISO-8601, so text order is time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def aware_utc(value: datetime) -> datetime:
    """How PostgreSQL is given a time: aware, in UTC (a naive one is refused, never guessed at)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always hands back aware UTC datetimes. PostgreSQL keeps timestamptz; SQLite keeps
    fixed-width ISO-8601 UTC text, which sorts like time and parses in C."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return sqlite_timestamp(value) if dialect.name == "sqlite" else aware_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
