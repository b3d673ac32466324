"""data flow, untrusted sessions and approvals

Issue 4: fingerprints of sensitive values each agent received (keyed HMACs, never the values), the agents'
flow rules and their policy for untrusted sessions, sessions marked untrusted, and calls waiting for a human.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("untrusted_policy", sa.String(length=8), nullable=False, server_default="approve"))
    op.create_table(
        "flow_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_id", "label", "target"),
    )
    op.create_index("ix_flow_rules_agent_id", "flow_rules", ["agent_id"])
    op.create_table(
        "flow_fingerprints",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=True),
        sa.Column("seen_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "fingerprint", "label"),
    )
    op.create_index("ix_flow_fingerprints_seen_at", "flow_fingerprints", ["seen_at"])
    op.create_table(
        "untrusted_sessions",
        sa.Column("agent_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("session", sa.String(length=64), nullable=False),
        sa.Column("source_tool", sa.String(length=64), nullable=False),
        sa.Column("marked_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "session"),
    )
    op.create_table(
        "approvals",
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("agent_name", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("arguments_enc", sa.Text(), nullable=False),
        sa.Column("args_hash", sa.String(length=64), nullable=False),
        sa.Column("session", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("run_call_id", sa.String(length=36), nullable=True),
        sa.Column("result_enc", sa.Text(), nullable=True),
        sa.Column("problem", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_index("ix_approvals_agent_id", "approvals", ["agent_id"])


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("untrusted_sessions")
    op.drop_index("ix_flow_fingerprints_seen_at", table_name="flow_fingerprints")
    op.drop_table("flow_fingerprints")
    op.drop_table("flow_rules")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("untrusted_policy")
