"""Executors (the server processes sharing the database, each with a heartbeat) and the run's
owner, so work is claimed in the database and a dead process's runs are taken over.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "executors",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("executor_id", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("executor_id")
    op.drop_table("executors")
