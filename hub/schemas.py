"""What the admin API reads and writes, apart from the database models. No secret has a field here."""

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, SecretStr

from connectors import TOOLS
from hub.models import Agent, Connection, Grant, utcnow
from scopes import SENSITIVE_LABELS

__all__ = [
    "AgentCreate",
    "AgentCreated",
    "AgentRead",
    "AgentUpdate",
    "ApiKeyConnect",
    "ApprovalDecision",
    "ApprovalLinkCreate",
    "ConnectionRead",
    "ExplainRequest",
    "FlowRuleCreate",
    "FlowRuleRead",
    "GrantCreate",
    "GrantRead",
    "KeyCreate",
    "KeyRead",
]

_NAME = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Lower-case letters, digits, '-' and '_'.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ROLE = "What the agent is for, e.g. 'answers support tickets'."
_OWNER = "Who answers for the agent: a person or a team."
_MODEL = "The model it runs on, e.g. 'claude-sonnet-4-5'."
_RUNTIME = "Where it runs, e.g. 'Claude Code on the build box'."
# Roster text is plain: no control characters, except that a description may have tabs and line breaks.
_LINE = r"^[^\x00-\x1f\x7f]*$"
_LINES = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"


class AgentCreate(_Strict):
    name: str = _NAME
    description: str = Field(default="", max_length=2000, pattern=_LINES)
    role: str = Field(default="", max_length=200, pattern=_LINE, description=_ROLE)
    owner: str = Field(default="", max_length=200, pattern=_LINE, description=_OWNER)
    model: str = Field(default="", max_length=100, pattern=_LINE, description=_MODEL)
    runtime: str = Field(default="", max_length=200, pattern=_LINE, description=_RUNTIME)


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value: object) -> object:
    # What the document says (format: date-time), not all pydantic's lax datetime takes: no Unix times, no
    # bare dates, no times without an offset.
    if value is None or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("expected an RFC 3339 time with its offset, e.g. 2030-12-31T23:59:00Z")


class KeyCreate(_Strict):
    expires_at: Annotated[datetime | None, BeforeValidator(_rfc3339)] = Field(
        default=None, description="When the key stops working; never, when left out."
    )


class GrantCreate(_Strict):
    agent: str = _NAME
    connection: str = _NAME
    scope: str = Field(max_length=64)
    constraints: dict[str, Any] = Field(default_factory=dict)


class ApiKeyConnect(_Strict):
    name: str = _NAME
    provider: str = Field(max_length=32)
    api_key: SecretStr = Field(description="The provider's API key; stored encrypted, never shown again.")
    scopes: list[str] = Field(min_length=1, max_length=32, description="The hub scopes this connection may grant.")


class ExplainRequest(_Strict):
    agent: str = _NAME
    tool: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    connection: str | None = Field(default=None, max_length=64)
    session: str | None = Field(
        default=None, max_length=128, description="A session id, to see the untrusted-session rule as it stands."
    )


class KeyRead(BaseModel):
    id: int
    hint: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def live(self) -> bool:
        """Neither revoked nor expired: the key works now."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())


class GrantRead(BaseModel):
    id: int
    agent: str
    connection: str
    scope: str
    constraints: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, grant: Grant) -> "GrantRead":
        return cls(
            id=grant.id,
            agent=grant.agent.name,
            connection=grant.connection.name,
            scope=grant.scope,
            constraints=grant.constraints,
            created_at=grant.created_at,
        )


class FlowRuleRead(BaseModel):
    id: int
    label: str
    target: str
    created_at: datetime


def _enum(values: Iterable[str]) -> dict[str, JsonValue]:
    listed: list[JsonValue] = [*sorted(values)]
    return {"enum": listed}


# What hub.agents.add_flow_rule accepts, listed in the document (it checks them): a traced label or a
# namespace above some, and a sink tool or a scope that sink tools need.
_SINKS = [t for t in TOOLS.values() if t.policy.sink]
_FLOW_LABELS = _enum({label.rsplit(".", n)[0] for label in SENSITIVE_LABELS for n in range(label.count(".") + 1)})
_FLOW_TARGETS = _enum({t.name for t in _SINKS} | {scope for t in _SINKS for scope in t.scopes})


class FlowRuleCreate(_Strict):
    label: str = Field(
        max_length=64,
        json_schema_extra=_FLOW_LABELS,
        description="A traced data label, e.g. 'pii.email', or 'pii' for all.",
    )
    target: str = Field(
        max_length=64,
        json_schema_extra=_FLOW_TARGETS,
        description="A sink tool name or a scope, e.g. 'messaging.chat.send'.",
    )


class AgentUpdate(_Strict):
    """Every field optional: what is left out stays as it is."""

    description: str | None = Field(default=None, max_length=2000, pattern=_LINES)
    role: str | None = Field(default=None, max_length=200, pattern=_LINE, description=_ROLE)
    owner: str | None = Field(default=None, max_length=200, pattern=_LINE, description=_OWNER)
    model: str | None = Field(default=None, max_length=100, pattern=_LINE, description=_MODEL)
    runtime: str | None = Field(default=None, max_length=200, pattern=_LINE, description=_RUNTIME)
    untrusted_policy: Literal["approve", "refuse"] | None = Field(
        default=None,
        description="Sinks and high-risk tools in a session that read untrusted content: a human approves, or refused.",
    )


class ApprovalDecision(_Strict):
    approve: bool


class ApprovalLinkCreate(_Strict):
    approver: str = Field(min_length=1, max_length=64, description="Who the link is for; recorded as the decider.")


class AgentRead(BaseModel):
    name: str
    description: str
    role: str
    owner: str
    model: str
    runtime: str
    created_at: datetime
    disabled_at: datetime | None
    untrusted_policy: str
    keys: list[KeyRead]
    grants: list[GrantRead]
    flow_rules: list[FlowRuleRead]

    @classmethod
    def of(cls, agent: Agent) -> "AgentRead":
        return cls(
            name=agent.name,
            description=agent.description,
            role=agent.role,
            owner=agent.owner,
            model=agent.model,
            runtime=agent.runtime,
            created_at=agent.created_at,
            disabled_at=agent.disabled_at,
            untrusted_policy=agent.untrusted_policy,
            flow_rules=[FlowRuleRead.model_validate(r, from_attributes=True) for r in agent.flow_rules],
            keys=[KeyRead.model_validate(k, from_attributes=True) for k in agent.keys],
            grants=[GrantRead.of(g) for g in agent.grants],
        )


class AgentCreated(BaseModel):
    agent: AgentRead
    key: str = Field(description="The agent key, shown this once; only its hash is stored.")


class ConnectionRead(BaseModel):
    name: str
    provider: str
    status: str
    account: str | None
    hub_scopes: list[str]
    requested_scopes: list[str]
    granted_scopes: list[str]
    expires_at: datetime | None
    last_refresh_at: datetime | None
    last_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, connection: Connection) -> "ConnectionRead":
        return cls.model_validate(connection, from_attributes=True)
