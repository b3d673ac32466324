"""Each replica's in-memory view of who may do what, so the hot path never asks the database.

The view is a snapshot of every live agent key, agent, grant and connection, tagged with the policy
revision it was read at. Every change to those tables bumps the revision (hub.agents.bump_revision):
a change made through this process reloads the snapshot before it answers; a change made elsewhere
(the CLI, another replica) is noticed by `watch()` within `cache_poll_interval`.
"""

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import Text, cast, select
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.orm import Session

from connectors import TOOLS
from hub.db import Database
from hub.errors import DatabaseUnavailable
from hub.models import Agent, AgentKey, Connection, FlowRule, Grant, HubMeta, utcnow
from scopes import GrantView, tools_allowed
from scopes.flow import SessionPolicy

__all__ = ["AgentPrincipal", "ConnectionInfo", "PolicyCache", "Snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    id: int
    name: str
    grants: tuple[GrantView, ...]
    # Tool name -> the connections on which this agent may call it.
    tools: Mapping[str, list[str]]
    # Data flow: (label, sink tool or scope) pairs allowed, and what sinks do in an untrusted session.
    flow_rules: tuple[tuple[str, str], ...] = ()
    untrusted_policy: SessionPolicy = "approve"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    id: int
    name: str
    provider: str
    status: str
    token_version: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    keys: Mapping[str, tuple[int, datetime | None]] = field(default_factory=dict)
    agents: Mapping[int, AgentPrincipal] = field(default_factory=dict)
    connections: Mapping[str, ConnectionInfo] = field(default_factory=dict)

    def agent_named(self, name: str) -> AgentPrincipal | None:
        return next((a for a in self.agents.values() if a.name == name), None)

    def agent_for_key_hash(self, key_hash: str) -> AgentPrincipal | None:
        entry = self.keys.get(key_hash)
        if entry is None:
            return None
        agent_id, expires_at = entry
        if expires_at is not None and expires_at <= utcnow():
            return None
        return self.agents.get(agent_id)


_REVISION = select(HubMeta.value).where(HubMeta.key == "policy_revision")


def _revision(db: Session | DbConnection) -> int:
    value = db.execute(_REVISION).scalar()
    return int(value) if value is not None else 0


def _load(session: Session) -> Snapshot:
    """Read the whole policy as plain column tuples (ORM objects for ~120k rows cost more than the rest).

    Thousands of agents typically hold the same few grants, so identical grants share one GrantView (frozen:
    sharing is safe, and its constraints are parsed once) and agents with the same grants share one read-only
    tools mapping (computed once)."""
    revision = _revision(session)
    connections = {
        name: ConnectionInfo(id_, name, provider, status, token_version)
        for id_, name, provider, status, token_version in session.execute(
            select(Connection.id, Connection.name, Connection.provider, Connection.status, Connection.token_version)
        )
    }
    live = {c.id: c for c in connections.values() if c.status != "revoked"}
    views: dict[tuple[int, str, str], GrantView] = {}
    grants: dict[int, list[GrantView]] = {}
    # Constraints are read as their stored JSON text and decoded once per distinct text (json.loads, as the
    # driver would): identical text decodes to identical constraints, key order included, so sharing is exact.
    for agent_id, connection_id, scope, stored in session.execute(
        select(Grant.agent_id, Grant.connection_id, Grant.scope, cast(Grant.constraints, Text))
    ):
        conn = live.get(connection_id)
        if conn is None:
            continue  # a revoked connection's grants allow nothing
        key = (connection_id, scope, stored)
        view = views.get(key)
        if view is None:
            constraints = MappingProxyType(dict(json.loads(stored)))
            view = views[key] = GrantView(conn.name, conn.provider, scope, constraints)
        grants.setdefault(agent_id, []).append(view)
    catalog = [(t.name, t.provider, t.scopes) for t in TOOLS.values()]
    rules: dict[int, list[tuple[str, str]]] = {}
    for agent_id, label, target in session.execute(
        select(FlowRule.agent_id, FlowRule.label, FlowRule.target).order_by(FlowRule.id)
    ):
        rules.setdefault(agent_id, []).append((label, target))
    # tools_allowed depends only on the (provider, connection, scope) the grants hold, not on their order or
    # constraints. The shared mappings and their lists are never mutated (hub.catalog only reads them).
    tools: dict[frozenset[tuple[str, str, str]], Mapping[str, list[str]]] = {}
    agents = {}
    for agent_id, name, untrusted_policy in session.execute(
        select(Agent.id, Agent.name, Agent.untrusted_policy).where(Agent.disabled_at.is_(None))
    ):
        held = tuple(grants.get(agent_id, ()))
        held_key = frozenset((g.provider, g.connection, g.scope) for g in held)
        allowed = tools.get(held_key)
        if allowed is None:
            allowed = tools[held_key] = MappingProxyType(tools_allowed(catalog, held))
        agents[agent_id] = AgentPrincipal(
            agent_id,
            name,
            held,
            allowed,
            tuple(rules.get(agent_id, ())),
            "refuse" if untrusted_policy == "refuse" else "approve",
        )
    keys = {
        key_hash: (agent_id, expires_at)
        for key_hash, agent_id, expires_at in session.execute(
            select(AgentKey.key_hash, AgentKey.agent_id, AgentKey.expires_at).where(AgentKey.revoked_at.is_(None))
        )
        if agent_id in agents
    }
    return Snapshot(revision, keys, agents, connections)


class PolicyCache:
    def __init__(self, db: Database, poll_interval: float) -> None:
        self._db = db
        self._poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self.snapshot = Snapshot(revision=-1)

    async def reload(self) -> Snapshot:
        async with self._lock:
            self.snapshot = await self._db.run(_load)
            return self.snapshot

    async def refresh_if_stale(self) -> None:
        revision = await self._db.read(_revision)  # four times a second: no ORM session for one value
        if revision != self.snapshot.revision:
            await self.reload()

    async def watch(self) -> None:
        """Poll the revision forever; a failed poll keeps serving the last snapshot. A database outage is
        hub.db's to report (once, not four times a second with a stack trace); any other failure is logged."""
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.refresh_if_stale()
            except DatabaseUnavailable:
                pass
            except Exception:
                log.warning("policy revision check failed; keeping the last snapshot", exc_info=True)
