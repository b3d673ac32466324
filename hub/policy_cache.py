"""Each replica's in-memory view of who may do what, so the hot path never asks the database.

The view is a snapshot of every live agent key, agent, grant and connection, tagged with the policy
revision it was read at. Every change to those tables bumps the revision (hub.agents.bump_revision):
a change made through this process reloads the snapshot before it answers; a change made elsewhere
(the CLI, another replica) is noticed by `watch()` within `cache_poll_interval`.
"""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import select
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


def _revision(session: Session) -> int:
    meta = session.get(HubMeta, "policy_revision")
    return int(meta.value) if meta else 0


def _load(session: Session) -> Snapshot:
    revision = _revision(session)
    connections = {
        c.name: ConnectionInfo(c.id, c.name, c.provider, c.status, c.token_version)
        for c in session.scalars(select(Connection))
    }
    by_id = {c.id: c for c in connections.values()}
    grants: dict[int, list[GrantView]] = {}
    for grant in session.scalars(select(Grant)):
        conn = by_id[grant.connection_id]
        if conn.status != "revoked":
            grants.setdefault(grant.agent_id, []).append(
                GrantView(conn.name, conn.provider, grant.scope, MappingProxyType(dict(grant.constraints)))
            )
    catalog = [(t.name, t.provider, t.scopes) for t in TOOLS.values()]
    rules: dict[int, list[tuple[str, str]]] = {}
    for rule in session.scalars(select(FlowRule).order_by(FlowRule.id)):
        rules.setdefault(rule.agent_id, []).append((rule.label, rule.target))
    agents = {}
    for agent in session.scalars(select(Agent).where(Agent.disabled_at.is_(None))):
        views = tuple(grants.get(agent.id, ()))
        agents[agent.id] = AgentPrincipal(
            agent.id,
            agent.name,
            views,
            tools_allowed(catalog, views),
            tuple(rules.get(agent.id, ())),
            "refuse" if agent.untrusted_policy == "refuse" else "approve",
        )
    keys = {
        k.key_hash: (k.agent_id, k.expires_at)
        for k in session.scalars(select(AgentKey).where(AgentKey.revoked_at.is_(None)))
        if k.agent_id in agents
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
        revision = await self._db.run(_revision)
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
