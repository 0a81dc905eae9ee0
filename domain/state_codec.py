"""The run state's one serialisation: to and from the JSON kept in ``runs.state``, upgrading
older versions on the way in."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.run_state import CURRENT_SCHEMA_VERSION, RunState
from domain.upcasters import UPCASTERS

_encoder = msgspec.json.Encoder()


class StateTooNew(ValueError):
    """A state written by a newer release than this one: refusing beats guessing."""


def encode_state(state: RunState) -> bytes:
    return _encoder.encode(state)


def state_to_builtins(state: RunState) -> dict[str, Any]:
    """JSON-ready builtins (for drivers that serialise themselves, such as PostgreSQL's JSONB)."""
    return msgspec.to_builtins(state)


def as_payload(part: msgspec.Struct) -> dict[str, Any]:
    """A state part (a triage result, a pause, Feedback's record) as an event's JSON payload."""
    return msgspec.to_builtins(part)


def upcast(document: dict[str, Any]) -> dict[str, Any]:
    """Lift a stored state's JSON object to the current version (no version stored means 1)."""
    version = document.get("schema_version", 1)
    if version > CURRENT_SCHEMA_VERSION:
        raise StateTooNew(f"run state version {version} is newer than this release's {CURRENT_SCHEMA_VERSION}")
    while version < CURRENT_SCHEMA_VERSION:
        document = UPCASTERS[version](document)
        version = document["schema_version"]
    return document


def state_from_builtins(document: dict[str, Any]) -> RunState:
    """The state from its parsed JSON, upgraded if an older release wrote it."""
    if document.get("schema_version") != CURRENT_SCHEMA_VERSION:
        document = upcast(document)
    return msgspec.convert(document, RunState)

