"""rate counts

Per-grant rate limits (issue 4): one counter per agent, connection, scope and fixed window, in the database so
every replica counts the same calls.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:54:42.007934
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_counts",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=1), nullable=False),
        sa.Column("period_start", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "connection", "scope", "period", "period_start"),
    )


def downgrade() -> None:
    op.drop_table("rate_counts")
