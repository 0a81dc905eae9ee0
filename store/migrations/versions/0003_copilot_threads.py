"""The copilot's conversation threads, one row per (tenant, thread); and runs indexed by creation
time per tenant, for the copilot's questions over a window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from store.types import JsonDocument, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "copilot_threads",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("messages", JsonDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_runs_tenant_created", "runs", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_created", "runs")
    op.drop_table("copilot_threads")
