"""What the admin API reads and writes, apart from the database models. No secret has a field here."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.models import Agent, Connection, Grant

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


class AgentCreate(_Strict):
    name: str = _NAME
    description: str = Field(default="", max_length=2000)


class KeyCreate(_Strict):
    expires_at: datetime | None = None


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


class FlowRuleCreate(_Strict):
    label: str = Field(max_length=64, description="A traced data label, e.g. 'pii.email', or 'pii' for all.")
    target: str = Field(max_length=64, description="A sink tool name or a scope, e.g. 'messaging.chat.send'.")


class AgentUpdate(_Strict):
    untrusted_policy: Literal["approve", "refuse"] = Field(
        description="Sinks and high-risk tools in a session that read untrusted content: a human approves, or refused."
    )


class ApprovalDecision(_Strict):
    approve: bool


class ApprovalLinkCreate(_Strict):
    approver: str = Field(min_length=1, max_length=64, description="Who the link is for; recorded as the decider.")


class AgentRead(BaseModel):
    name: str
    description: str
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
