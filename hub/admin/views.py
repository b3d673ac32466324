"""What the admin page shows, read in one transaction into plain objects that hold no secret."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.audit import latest
from hub.connections import list_connections
from hub.models import Agent, Grant
from hub.providers import ProviderEndpoints
from hub.schemas import AgentRead, ConnectionRead

__all__ = ["AUDIT_ROWS", "Dashboard", "ProviderChoice", "load_dashboard", "provider_choices"]

AUDIT_ROWS = 50


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    name: str
    display_name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dashboard:
    connections: list[ConnectionRead]
    agents: list[AgentRead]
    audit: list[dict[str, Any]]

    @property
    def grantable(self) -> list[ConnectionRead]:
        """Connections a grant can name: not revoked, and authorised for at least one scope."""
        return [c for c in self.connections if c.status != "revoked" and c.hub_scopes]

    @property
    def active_agents(self) -> list[AgentRead]:
        return [a for a in self.agents if a.disabled_at is None]

    def connection(self, name: str) -> ConnectionRead | None:
        return next((c for c in self.connections if c.name == name), None)


def load_dashboard(session: Session) -> Dashboard:
    agents = session.scalars(
        select(Agent)
        .options(selectinload(Agent.keys), selectinload(Agent.grants).selectinload(Grant.connection))
        .order_by(Agent.name)
    )
    return Dashboard(
        connections=[ConnectionRead.of(c) for c in list_connections(session)],
        agents=[AgentRead.of(a) for a in agents],
        audit=latest(session, limit=AUDIT_ROWS),
    )


def provider_choices(providers: dict[str, ProviderEndpoints]) -> list[ProviderChoice]:
    """Providers an admin can connect now: only those with client credentials (or a sandbox)."""
    return [
        ProviderChoice(name, p.manifest.display_name, tuple(p.manifest.scope_map))
        for name, p in sorted(providers.items())
        if p.configured
    ]
