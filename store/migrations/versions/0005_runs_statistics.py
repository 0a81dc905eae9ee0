"""PostgreSQL: statistics on the runs' tenant and status together, so the planner knows how many
of a tenant's runs are in a status instead of multiplying the two shares as if independent.

Without them, the inbox's query (one tenant's paused runs, newest first) was planned as a
backward scan of the primary key filtered row by row: measured with 100,000 runs, 26.6 ms for a
tenant with no paused run, growing with the table, against 0.03 ms through ``ix_runs_tenant_status``
once the planner knew. SQLite's planner already takes that index; nothing changes there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS runs_tenant_status (mcv, dependencies) ON tenant_id, status FROM runs"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS runs_tenant_status")
