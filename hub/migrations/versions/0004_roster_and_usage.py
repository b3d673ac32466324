"""agent roster details, model usage and prices

Issue 5: what each agent is (role, owner, model, runtime), the model token usage runtimes report, and the
price table the admin edits to turn usage into cost.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("role", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("model", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("runtime", sa.String(length=200), nullable=False, server_default=""))
    op.create_table(
        "usage_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_reports_agent_ts", "usage_reports", ["agent_id", "ts"])
    op.create_table(
        "model_prices",
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("input_per_mtok", sa.Float(), nullable=False),
        sa.Column("output_per_mtok", sa.Float(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )
    op.create_index("ix_audit_ts", "audit_records", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_audit_ts", table_name="audit_records")
    op.drop_table("model_prices")
    op.drop_index("ix_usage_reports_agent_ts", table_name="usage_reports")
    op.drop_table("usage_reports")
    with op.batch_alter_table("agents") as batch:
        for column in ("runtime", "model", "owner", "role"):
            batch.drop_column(column)
