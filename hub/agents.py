"""Agents, their keys and their grants: keyword-only service functions on a database session.

Every change bumps the policy revision, which is how each replica's cache learns it must reload.
"""

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import CONNECTORS, TOOLS
from hub.credentials import AGENT_KEY_PREFIX, hash_secret, mint
from hub.errors import Conflict, InvalidArguments, NotFound
from hub.models import Agent, AgentKey, AuditRecord, Connection, FlowRule, Grant, HubMeta, utcnow
from scopes import SENSITIVE_LABELS, ConstraintsError, is_known_scope, parse_constraints

__all__ = [
    "NAME_PATTERN",
    "ROSTER_LIMITS",
    "add_flow_rule",
    "add_grant",
    "bump_revision",
    "create_agent",
    "create_key",
    "disable_agent",
    "get_agent",
    "get_connection",
    "last_activity",
    "remove_flow_rule",
    "remove_grant",
    "revoke_key",
    "set_untrusted_policy",
    "update_agent",
    "validate_name",
]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

# What the roster says of an agent, free text each, and how long each may be (the columns' lengths).
ROSTER_LIMITS = {"description": 2000, "role": 200, "owner": 200, "model": 100, "runtime": 200}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def validate_name(name: str, what: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidArguments(f"{what} name must be 1-63 of a-z, 0-9, '-' and '_', starting with a letter or digit")
    return name


def bump_revision(session: Session) -> int:
    meta = session.get(HubMeta, "policy_revision", with_for_update=True)
    assert meta is not None, "the initial migration seeds policy_revision"
    meta.value = str(int(meta.value) + 1)
    return int(meta.value)


def get_agent(session: Session, *, name: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        raise NotFound(f"no agent named {name!r}")
    return agent


def get_connection(session: Session, *, name: str) -> Connection:
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFound(f"no connection named {name!r}")
    return connection


def _roster_text(field: str, value: str) -> str:
    """Free text for the roster, trimmed; one line, except a description, and no longer than its column."""
    value = value.strip()
    limit = ROSTER_LIMITS[field]
    if len(value) > limit:
        raise InvalidArguments(f"the {field} is limited to {limit} characters")
    if (_CONTROL_BUT_LINES if field == "description" else _CONTROL).search(value):
        raise InvalidArguments(f"the {field} must be plain text, without control characters")
    return value


def create_agent(
    session: Session,
    *,
    name: str,
    description: str = "",
    role: str = "",
    owner: str = "",
    model: str = "",
    runtime: str = "",
) -> tuple[Agent, str]:
    """A new agent and its first key; the key is returned once and stored only as a hash."""
    validate_name(name, "agent")
    roster = {"description": description, "role": role, "owner": owner, "model": model, "runtime": runtime}
    checked = {field: _roster_text(field, value) for field, value in roster.items()}
    if session.scalar(select(Agent.id).where(Agent.name == name)) is not None:
        raise Conflict(f"an agent named {name!r} exists")
    agent = Agent(name=name, **checked)
    session.add(agent)
    session.flush()
    key = create_key(session, agent=agent)
    return agent, key


def create_key(session: Session, *, agent: Agent, expires_at: datetime | None = None) -> str:
    key = mint(AGENT_KEY_PREFIX)
    session.add(AgentKey(agent_id=agent.id, key_hash=hash_secret(key), hint=key[:8], expires_at=expires_at))
    bump_revision(session)
    return key


def revoke_key(session: Session, *, agent: Agent, key_id: int) -> None:
    key = session.get(AgentKey, key_id)
    if key is None or key.agent_id != agent.id:
        raise NotFound(f"agent {agent.name!r} has no key {key_id}")
    key.revoked_at = key.revoked_at or utcnow()
    bump_revision(session)


def disable_agent(session: Session, *, agent: Agent) -> None:
    """Disable the agent: every key stops working; grants and history stay for the record."""
    agent.disabled_at = agent.disabled_at or utcnow()
    for key in agent.keys:
        key.revoked_at = key.revoked_at or utcnow()
    bump_revision(session)


def add_grant(
    session: Session,
    *,
    agent: Agent,
    connection: Connection,
    scope: str,
    constraints: dict[str, Any] | None = None,
) -> Grant:
    if not is_known_scope(scope):
        raise InvalidArguments(f"unknown scope {scope!r}")
    if scope not in CONNECTORS[connection.provider].manifest.scope_map:
        raise InvalidArguments(f"{connection.provider} connections do not serve {scope!r}")
    if scope not in connection.hub_scopes:
        # Least privilege at the source: the provider was only asked for the connection's own scopes.
        raise Conflict(f"connection {connection.name!r} was not authorised for {scope!r}: reconnect asking for it")
    try:
        # Typos must surface when the admin grants, not when an agent trips on them.
        parse_constraints(constraints)
    except ConstraintsError as exc:
        raise InvalidArguments(f"invalid constraints: {exc}") from None
    grant = session.scalar(
        select(Grant).where(Grant.agent_id == agent.id, Grant.connection_id == connection.id, Grant.scope == scope)
    )
    if grant is None:
        grant = Grant(agent_id=agent.id, connection_id=connection.id, scope=scope)
        session.add(grant)
    grant.constraints = constraints or {}
    session.flush()
    bump_revision(session)
    return grant


def remove_grant(session: Session, *, agent: Agent, connection: Connection, scope: str) -> None:
    grant = session.scalar(
        select(Grant).where(Grant.agent_id == agent.id, Grant.connection_id == connection.id, Grant.scope == scope)
    )
    if grant is None:
        raise NotFound(f"agent {agent.name!r} has no grant of {scope!r} on {connection.name!r}")
    session.delete(grant)
    bump_revision(session)


def _flow_label(label: str) -> str:
    # A rule names a sensitive label, or a namespace above some (`pii` covers pii.email, pii.phone …).
    if label in SENSITIVE_LABELS or any(known.startswith(f"{label}.") for known in SENSITIVE_LABELS):
        return label
    raise InvalidArguments(
        f"{label!r} is not a label whose data is traced; use one of {', '.join(sorted(SENSITIVE_LABELS))} or 'pii'"
    )


def _flow_target(target: str) -> str:
    # A sink tool by name, or a scope that sink tools need (every tool needing it is then allowed).
    if target in TOOLS:
        if not TOOLS[target].policy.sink:
            raise InvalidArguments(f"{target!r} sends nothing on, so a flow rule for it would change nothing")
        return target
    if is_known_scope(target) and any(target in t.scopes and t.policy.sink for t in TOOLS.values()):
        return target
    raise InvalidArguments(f"{target!r} is neither a sink tool nor a scope that sink tools need")


def add_flow_rule(session: Session, *, agent: Agent, label: str, target: str) -> FlowRule:
    """Allow data of `label` this agent read to flow into `target` (a sink tool or scope)."""
    label, target = _flow_label(label), _flow_target(target)
    rule = session.scalar(
        select(FlowRule).where(FlowRule.agent_id == agent.id, FlowRule.label == label, FlowRule.target == target)
    )
    if rule is None:
        rule = FlowRule(agent_id=agent.id, label=label, target=target)
        session.add(rule)
        session.flush()
        bump_revision(session)
    return rule


def remove_flow_rule(session: Session, *, agent: Agent, rule_id: int) -> None:
    rule = session.get(FlowRule, rule_id)
    if rule is None or rule.agent_id != agent.id:
        raise NotFound(f"agent {agent.name!r} has no flow rule {rule_id}")
    session.delete(rule)
    bump_revision(session)


def update_agent(
    session: Session,
    *,
    agent: Agent,
    description: str | None = None,
    role: str | None = None,
    owner: str | None = None,
    model: str | None = None,
    runtime: str | None = None,
    untrusted_policy: str | None = None,
) -> None:
    """Change what is given (None leaves a field as it is). Only the untrusted policy is policy: the roster
    text describes the agent and decides nothing, so it alone does not bump the revision."""
    roster = {"description": description, "role": role, "owner": owner, "model": model, "runtime": runtime}
    checked = {field: _roster_text(field, value) for field, value in roster.items() if value is not None}
    if untrusted_policy is not None:
        set_untrusted_policy(session, agent=agent, policy=untrusted_policy)
    for field, value in checked.items():
        setattr(agent, field, value)


def last_activity(session: Session) -> dict[str, datetime]:
    """Each agent's newest audit record's time, for every agent in one statement: a correlated subquery
    per agent reads one row off the (agent_name, seq) index, however long the log."""
    newest = (
        select(AuditRecord.ts)
        .where(AuditRecord.agent_name == Agent.name)
        .order_by(AuditRecord.seq.desc())
        .limit(1)
        .correlate(Agent)
        .scalar_subquery()
    )
    rows = session.execute(select(Agent.name, newest.label("ts")))
    return {name: ts for name, ts in rows if ts is not None}


def set_untrusted_policy(session: Session, *, agent: Agent, policy: str) -> None:
    """What sinks and high-risk tools do once this agent's session read untrusted content."""
    if policy not in ("approve", "refuse"):
        raise InvalidArguments("untrusted_policy must be 'approve' (a human decides) or 'refuse'")
    agent.untrusted_policy = policy
    bump_revision(session)
