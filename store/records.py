"""Plain records read from and written to the store (no ORM objects on the hot path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from domain.run_state import RunState


class EventRecord(NamedTuple):
    """One committed entry of the run log; ``id`` is global, ``seq`` is per run.

    Immutable, and a named tuple rather than a frozen dataclass: eleven or so are built per run
    on the hot path, and a frozen dataclass's ``__init__`` cost about 2.5 times as much."""

    id: int
    tenant_id: str
    run_id: str
    seq: int
    topic: str
    actor: str
    request_id: str | None
    payload: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "seq": self.seq,
            "topic": self.topic,
            "actor": self.actor,
            "request_id": self.request_id,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(slots=True)
class RunRecord:
    """A run row. ``state`` holds the agents' results; the columns hold what queries filter on."""

    id: str
    tenant_id: str
    workflow_id: str
    status: str
    trigger_type: str
    trigger_ref: str | None
    started_by: str
    version: int
    last_seq: int
    exception: dict[str, Any]
    state: RunState
    sla_deadline: datetime | None
    pause_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    executor_id: str | None = None
    """The server process that advances the run while it is active (see ``store.executors``)."""


class EventDraft(NamedTuple):
    """An event that a transition will append; the writer gives it its global id (a named tuple
    for the same reason as ``EventRecord``)."""

    seq: int
    topic: str
    actor: str
    payload: dict[str, Any]
    request_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    """The first answer to a request, kept so a retry with the same key gets it again."""

    tenant_id: str
    key: str
    fingerprint: str
    status_code: int
    response: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IngestedItem:
    """An item an ingest source delivered, and the run started for it; the key makes a re-read
    of the source a no-op for this item."""

    tenant_id: str
    source_id: str
    item_key: str
    run_id: str
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedNotification:
    """A notify step's message for one of the tenant's channels, written as a delivery with the
    step's event; its id is derived from the run and the step, so it is written once."""

    id: str
    tenant_id: str
    run_id: str
    channel: str
    message: dict[str, Any]
    created_at: datetime
    refused: str | None = None
    """Why it cannot be sent as things are (the channel is missing, or a variable it needs is
    unset): written dead at once, with this reason, instead of being tried."""


@dataclass(slots=True)
class RunWrite:
    """One run's atomic change: its new row (version already bumped), its events, its answer."""

    run: RunRecord
    is_new: bool
    events: list[EventDraft] = field(default_factory=list)
    idempotency: IdempotentResponse | None = None
    ingested: IngestedItem | None = None
    notifications: list[QueuedNotification] = field(default_factory=list)


@dataclass(slots=True)
class ScheduleRecord:
    """A schedule row: what it says (``settings``), and where its firing has got to."""

    tenant_id: str
    id: str
    workflow_id: str
    settings: dict[str, Any]
    paused: bool
    paused_reason: str | None
    consecutive_failures: int
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_run_id: str | None
    origin: str
    declared_hash: str | None
    deleted: bool
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class ScheduleLogEntry:
    """One thing that happened to a schedule: a fire, a skip, a coalesced or dropped catch-up,
    a change someone made."""

    tenant_id: str
    schedule_id: str
    at: datetime
    kind: str
    actor: str
    scheduled_for: datetime | None = None
    run_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
