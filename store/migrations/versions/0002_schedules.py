"""Schedules and their history, and the items ingest has already started runs for.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from store.types import EventId, JsonDocument, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("settings", JsonDocument, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("paused_reason", sa.String(500)),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("next_fire_at", UTCDateTime()),
        sa.Column("last_fire_at", UTCDateTime()),
        sa.Column("last_run_id", sa.String(40)),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("declared_hash", sa.String(64)),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(160), nullable=False),
    )
    op.create_table(
        "schedule_log",
        sa.Column("id", EventId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("schedule_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("scheduled_for", UTCDateTime()),
        sa.Column("run_id", sa.String(40)),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("detail", JsonDocument, nullable=False),
    )
    op.create_index("ix_schedule_log_schedule", "schedule_log", ["tenant_id", "schedule_id", "id"])
    op.create_table(
        "ingested_items",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("item_key", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingested_items")
    op.drop_index("ix_schedule_log_schedule", "schedule_log")
    op.drop_table("schedule_log")
    op.drop_table("schedules")
