"""What the admin page shows, read in one transaction into plain objects that hold no secret."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from connectors import CONNECTORS
from connectors.base import Manifest
from hub.audit import latest
from hub.connections import API_KEY_GRANT, list_connections
from hub.models import Agent, Grant
from hub.providers import ProviderEndpoints
from hub.schemas import AgentRead, ConnectionRead

__all__ = [
    "AUDIT_ROWS",
    "Dashboard",
    "ProviderChoice",
    "ProviderScopes",
    "load_dashboard",
    "provider_choices",
    "provider_scopes",
]

AUDIT_ROWS = 50
# What hub.connections.connect_with_api_key records as a connection's granted scopes: it asked for none.


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """A provider as the connect forms offer it: through OAuth (client credentials set), an API key, or both."""

    name: str
    display_name: str
    scopes: tuple[str, ...]
    oauth: bool
    api_key_hint: str | None


@dataclass(frozen=True, slots=True)
class ProviderScopes:
    """A connection's provider scopes: those the hub asked for, those granted, and any difference."""

    api_key: bool  # connected with a pasted key: its permissions are set at the provider, not asked for
    requested: list[str]
    granted: list[str]
    missing: list[str]  # asked for and not granted: tools needing them fail with scope_denied
    extra: list[str]  # granted without being asked (e.g. Google's include_granted_scopes)
    affected: list[str]  # the connection's hub scopes that a missing provider scope breaks

    @property
    def as_asked(self) -> bool:
        return not (self.missing or self.extra)


def _covers(manifest: Manifest | None, granted: set[str], scope: str) -> bool:
    # In an exclusive ladder (Stripe's read_only < read_write) a stronger grant includes the weaker scope.
    if scope in granted:
        return True
    ladder = list(manifest.exclusive_scopes) if manifest else []
    return scope in ladder and any(g in ladder[ladder.index(scope) :] for g in granted)


def provider_scopes(connection: ConnectionRead) -> ProviderScopes:
    requested, granted = connection.requested_scopes, connection.granted_scopes
    if granted == [API_KEY_GRANT]:
        return ProviderScopes(True, [], [], [], [], [])
    connector = CONNECTORS.get(connection.provider)
    manifest = connector.manifest if connector else None
    held = set(granted)
    missing = [s for s in requested if not _covers(manifest, held, s)]
    affected = [
        hub_scope
        for hub_scope in connection.hub_scopes
        if manifest is not None and any(not _covers(manifest, held, p) for p in manifest.scope_map.get(hub_scope, ()))
    ]
    # A weaker scope granted in place of a stronger one asked for is not "more" (it is what is missing).
    asked = set(requested)
    extra = sorted(g for g in held if g not in asked and not _covers(manifest, asked, g))
    return ProviderScopes(False, requested, granted, missing, extra, affected)


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

    def scopes(self, connection: ConnectionRead) -> ProviderScopes:
        return provider_scopes(connection)


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
    """Providers an admin can connect now: through OAuth only with client credentials (or a sandbox);
    with an API key wherever the manifest offers one, since a pasted key needs no client registration."""
    return [
        ProviderChoice(
            name,
            p.manifest.display_name,
            tuple(p.manifest.scope_map),
            oauth=p.configured,
            api_key_hint=p.manifest.api_key.hint if p.manifest.api_key else None,
        )
        for name, p in sorted(providers.items())
        if p.configured or p.manifest.api_key
    ]
