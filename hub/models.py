"""The hub's tables (SQLAlchemy 2). Secrets are stored only as ciphertext (`*_enc`) or hashes (`*_hash`)."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AdminCredential",
    "Agent",
    "AgentKey",
    "Approval",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Connection",
    "FlowFingerprint",
    "FlowRule",
    "Grant",
    "HubMeta",
    "ModelPrice",
    "OAuthState",
    "RateCount",
    "UntrustedSession",
    "UsageReport",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class HubMeta(Base):
    """Small hub-wide values: the policy revision, the audit HMAC key (encrypted)."""

    __tablename__ = "hub_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # The roster: what the agent is for, who answers for it, the model and runtime it runs on (free text).
    role: Mapped[str] = mapped_column(String(200), default="", server_default="")
    owner: Mapped[str] = mapped_column(String(200), default="", server_default="")
    model: Mapped[str] = mapped_column(String(100), default="", server_default="")
    runtime: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    # In a session that read untrusted content, sinks and high-risk tools: "approve" (wait for a human) or "refuse".
    untrusted_policy: Mapped[str] = mapped_column(String(8), default="approve", server_default="approve")
    keys: Mapped[list["AgentKey"]] = relationship(back_populates="agent", cascade="all, delete-orphan")
    grants: Mapped[list["Grant"]] = relationship(back_populates="agent", cascade="all, delete-orphan")
    flow_rules: Mapped[list["FlowRule"]] = relationship(cascade="all, delete-orphan", order_by="FlowRule.id")


class AgentKey(Base):
    __tablename__ = "agent_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart on the page
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    agent: Mapped[Agent] = relationship(back_populates="keys")


class Connection(Base):
    __tablename__ = "connections"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    account: Mapped[str | None] = mapped_column(String(200))
    hub_scopes: Mapped[list[str]] = mapped_column(default=list)
    requested_scopes: Mapped[list[str]] = mapped_column(default=list)
    granted_scopes: Mapped[list[str]] = mapped_column(default=list)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    # Bumped on every token change: lets concurrent refreshers see that someone else already refreshed.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    last_refresh_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    grants: Mapped[list["Grant"]] = relationship(back_populates="connection", cascade="all, delete-orphan")


class Grant(Base):
    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("agent_id", "connection_id", "scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(64))
    constraints: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agent: Mapped[Agent] = relationship(back_populates="grants")
    connection: Mapped[Connection] = relationship(back_populates="grants")


class OAuthState(Base):
    """A pending connect: the state (hashed), the PKCE verifier (encrypted), what was asked for."""

    __tablename__ = "oauth_states"
    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    connection_name: Mapped[str] = mapped_column(String(64))
    hub_scopes: Mapped[list[str]] = mapped_column(default=list)
    requested_scopes: Mapped[list[str]] = mapped_column(default=list)
    code_verifier_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class AdminCredential(Base):
    """Admin API tokens, one-time sign-in links and page sessions, stored as SHA-256 only."""

    __tablename__ = "admin_credentials"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # api | login | session
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditRecord(Base):
    """One tool call, allowed or denied. `hash` chains each record to the one before (`seq` order)."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_agent_seq", "agent_name", "seq"), Index("ix_audit_ts", "ts"))
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    call_id: Mapped[str] = mapped_column(String(36), unique=True)
    ts: Mapped[datetime]
    agent_name: Mapped[str | None] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(8))  # allow | deny
    status: Mapped[int]
    problem: Mapped[str | None] = mapped_column(String(48))
    latency_ms: Mapped[float]
    args_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RateCount(Base):
    """Calls of one agent through one grant (connection + scope) in one fixed window, shared by replicas."""

    __tablename__ = "rate_counts"
    agent_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    connection: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(1), primary_key=True)  # "m" (minute) or "d" (day)
    period_start: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AuditHead(Base):
    """The chain's head, one row: locking it serialises appends across processes."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class FlowRule(Base):
    """`label → target`: data of `label` (or below it) this agent read may flow into the sink tool or scope."""

    __tablename__ = "flow_rules"
    __table_args__ = (UniqueConstraint("agent_id", "label", "target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowFingerprint(Base):
    """A sensitive value an agent received, as a keyed HMAC of its normalised form (scopes.flow)."""

    __tablename__ = "flow_fingerprints"
    agent_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str | None] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class UntrustedSession(Base):
    """A session (MCP session, `X-Switchboard-Session`, or "" for the agent's time window) that read content
    written by outsiders."""

    __tablename__ = "untrusted_sessions"
    agent_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    session: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_tool: Mapped[str] = mapped_column(String(64))
    marked_at: Mapped[datetime]


class Approval(Base):
    """A call waiting for, or decided by, a human. Bound to the hash of its exact arguments (kept encrypted).

    status: pending → approved → running → done | failed, or pending → denied | expired."""

    __tablename__ = "approvals"
    call_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[int] = mapped_column(index=True)
    agent_name: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str] = mapped_column(String(64))
    arguments_enc: Mapped[str] = mapped_column(Text)
    args_hash: Mapped[str] = mapped_column(String(64))
    session: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    run_call_id: Mapped[str | None] = mapped_column(String(36))
    result_enc: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[dict[str, Any] | None]


class UsageReport(Base):
    """Model tokens a runtime reported for one of its agent's turns (`POST /v1/usage`)."""

    __tablename__ = "usage_reports"
    __table_args__ = (Index("ix_usage_reports_agent_ts", "agent_id", "ts"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    model: Mapped[str] = mapped_column(String(100))
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)


class ModelPrice(Base):
    """What a model costs, per million input and output tokens, as the admin entered it."""

    __tablename__ = "model_prices"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    input_per_mtok: Mapped[float] = mapped_column(Float)
    output_per_mtok: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
