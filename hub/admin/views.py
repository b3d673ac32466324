"""What the admin page shows, read in one transaction into plain objects that hold no secret."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from connectors import CONNECTORS, TOOLS
from connectors.base import Manifest
from hub import approvals
from hub.agents import last_activity
from hub.approvals import ApprovalView
from hub.audit import latest
from hub.connections import API_KEY_GRANT, list_connections
from hub.models import Agent, Grant
from hub.providers import ProviderEndpoints
from hub.schemas import AgentRead, ConnectionRead
from hub.vault import Vault
from scopes import LABELS, SENSITIVE_LABELS

__all__ = [
    "AUDIT_ROWS",
    "DECIDED_ROWS",
    "EXPLAIN_TOOLS",
    "FLOW_LABELS",
    "FLOW_TARGETS",
    "Choice",
    "Dashboard",
    "ProviderChoice",
    "ProviderScopes",
    "load_dashboard",
    "provider_choices",
    "provider_scopes",
]

AUDIT_ROWS = 50
DECIDED_ROWS = 10  # the approvals section's short history of decided calls


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
class Choice:
    """One option of a select: its value, and what it is, for the option's text."""

    value: str
    text: str


def _flow_labels() -> tuple[Choice, ...]:
    # What hub.agents.add_flow_rule accepts: a traced label, or a namespace above some (`pii`).
    namespaces = sorted({label.partition(".")[0] for label in SENSITIVE_LABELS if "." in label})
    covered = {n: sorted(label for label in SENSITIVE_LABELS if label.startswith(f"{n}.")) for n in namespaces}
    choices = [Choice(n, f"{n} — all of {', '.join(covered[n])}") for n in namespaces if n not in SENSITIVE_LABELS]
    choices += [Choice(label, f"{label} — {LABELS[label]}") for label in SENSITIVE_LABELS]
    return tuple(sorted(choices, key=lambda c: c.value))  # a namespace just above the labels it covers


def _flow_targets() -> tuple[tuple[str, tuple[Choice, ...]], ...]:
    # What hub.agents.add_flow_rule accepts: a sink tool, or a scope sink tools need (then all of them).
    sinks = sorted((t for t in TOOLS.values() if t.policy.sink), key=lambda t: t.name)
    scopes = sorted({scope for t in sinks for scope in t.scopes})
    return (
        ("Sink tools", tuple(Choice(t.name, t.name) for t in sinks)),
        (
            "Scopes (every sink tool needing it)",
            tuple(Choice(s, f"{s} — {', '.join(t.name for t in sinks if s in t.scopes)}") for s in scopes),
        ),
    )


def _explain_tools() -> tuple[tuple[str, tuple[str, ...]], ...]:
    providers = sorted({t.provider for t in TOOLS.values()})
    return tuple(
        (CONNECTORS[p].manifest.display_name, tuple(sorted(t.name for t in TOOLS.values() if t.provider == p)))
        for p in providers
    )


# Fixed at import, like the tool catalogue they are drawn from.
FLOW_LABELS = _flow_labels()
FLOW_TARGETS = _flow_targets()
EXPLAIN_TOOLS = _explain_tools()


@dataclass(frozen=True, slots=True)
class Dashboard:
    connections: list[ConnectionRead]
    agents: list[AgentRead]
    audit: list[dict[str, Any]]
    pending: list[ApprovalView]  # calls waiting for a human, newest first
    pending_count: int  # all of them, where `pending` may be cut short
    decided: list[ApprovalView]  # the latest calls no longer pending
    last_activity: dict[str, datetime] = field(default_factory=dict)  # agent name → its newest call's time

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

    @property
    def flow_labels(self) -> tuple[Choice, ...]:
        return FLOW_LABELS

    @property
    def flow_targets(self) -> tuple[tuple[str, tuple[Choice, ...]], ...]:
        return FLOW_TARGETS

    @property
    def tools(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Every tool, by provider (display name first), for the Explain form."""
        return EXPLAIN_TOOLS


def load_dashboard(session: Session, vault: Vault) -> Dashboard:
    agents = session.scalars(
        select(Agent)
        .options(
            selectinload(Agent.keys),
            selectinload(Agent.grants).selectinload(Grant.connection),
            selectinload(Agent.flow_rules),
        )
        .order_by(Agent.name)
    )
    pending = approvals.listing(session, vault, status="pending")
    # Newest first, pending ones among them: reading that many more rows leaves DECIDED_ROWS decided ones.
    latest_calls = approvals.listing(session, vault, limit=len(pending) + DECIDED_ROWS)
    return Dashboard(
        connections=[ConnectionRead.of(c) for c in list_connections(session)],
        agents=[AgentRead.of(a) for a in agents],
        audit=latest(session, limit=AUDIT_ROWS),
        pending=pending,
        pending_count=approvals.pending_count(session),
        decided=[a for a in latest_calls if a.status != "pending"][:DECIDED_ROWS],
        last_activity=last_activity(session),
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
