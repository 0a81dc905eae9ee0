"""The schema, as SQLAlchemy Core tables. Alembic migrations create exactly this."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from store.types import EventId, JsonDocument, UTCDateTime

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("workflow_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("trigger_type", String(16), nullable=False),
    Column("trigger_ref", String(128)),
    Column("started_by", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("exception", JsonDocument, nullable=False),
    Column("state", JsonDocument, nullable=False),
    Column("sla_deadline", UTCDateTime()),
    Column("pause_expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("executor_id", String(40)),
    Index("ix_runs_tenant_id", "tenant_id", "id"),
    Index("ix_runs_tenant_status", "tenant_id", "status", "id"),
    Index("ix_runs_tenant_workflow", "tenant_id", "workflow_id", "id"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_tenant_created", "tenant_id", "created_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("run_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("topic", String(64), nullable=False),
    Column("actor", String(160), nullable=False),
    Column("request_id", String(64)),
    Column("payload", JsonDocument, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("run_id", "seq", name="uq_events_run_seq"),
    Index("ix_events_tenant_id", "tenant_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("workflow_id", String(64), nullable=False),
    Column("settings", JsonDocument, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("paused_reason", String(500)),
    Column("consecutive_failures", Integer, nullable=False),
    Column("next_fire_at", UTCDateTime()),
    Column("last_fire_at", UTCDateTime()),
    Column("last_run_id", String(40)),
    Column("origin", String(16), nullable=False),
    Column("declared_hash", String(64)),
    Column("deleted", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(160), nullable=False),
)

schedule_log = Table(
    "schedule_log",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("schedule_id", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("scheduled_for", UTCDateTime()),
    Column("run_id", String(40)),
    Column("actor", String(160), nullable=False),
    Column("detail", JsonDocument, nullable=False),
    Index("ix_schedule_log_schedule", "tenant_id", "schedule_id", "id"),
)

executors = Table(
    "executors",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)
"""The server processes sharing this database. A process whose heartbeat is older than the
lease is dead, and the runs it owned (``runs.executor_id``) are taken over by another."""

ingested_items = Table(
    "ingested_items",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("source_id", String(64), primary_key=True),
    Column("item_key", String(255), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("ingested_at", UTCDateTime(), nullable=False),
)

copilot_threads = Table(
    "copilot_threads",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("messages", JsonDocument, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(40), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("description", String(500), nullable=False),
    Column("topics", JsonDocument, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128)),
    Column("previous_secret_until", UTCDateTime()),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(500)),
    Column("consecutive_failures", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(160), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
"""A tenant's webhook subscriptions: where to POST, which topics (patterns as on the streams),
and the Standard Webhooks secrets that sign (the previous one until its overlap ends)."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("event_id", EventId),
    Column("run_id", String(40)),
    Column("topic", String(64), nullable=False),
    Column("message", JsonDocument),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("give_up_at", UTCDateTime(), nullable=False),
    Column("claimed_by", String(40)),
    Column("claimed_until", UTCDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_tenant", "tenant_id", "id"),
    Index("ix_deliveries_endpoint", "tenant_id", "endpoint_id", "status", "id"),
    Index("ix_deliveries_run", "tenant_id", "run_id"),
)
"""The outbox: one row per (event, subscribed endpoint), or per test message, written with the
event's own transaction; ``message`` only for a delivery that has no event."""

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", String(500)),
    Column("response_snippet", Text),
)
