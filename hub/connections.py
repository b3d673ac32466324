"""Connections: listing, revoking, and connecting with an API key. OAuth connecting lives in hub.oauth,
token upkeep in hub.tokens."""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import CONNECTORS
from hub.agents import bump_revision, get_connection, validate_name
from hub.errors import InvalidArguments, NotFound
from hub.models import Connection, utcnow
from hub.tokens import token_context
from hub.vault import Vault

__all__ = ["API_KEY_GRANT", "connect_with_api_key", "is_api_key", "list_connections", "revoke_connection"]

# What a pasted key's connection records as its granted provider scopes: the key's own permissions decide.
API_KEY_GRANT = "api_key"


def is_api_key(connection: Connection) -> bool:
    return connection.granted_scopes == [API_KEY_GRANT]


def list_connections(session: Session) -> list[Connection]:
    return list(session.scalars(select(Connection).order_by(Connection.name)))


def revoke_connection(session: Session, *, name: str) -> Connection:
    """Forget the connection's tokens; its grants stop working at once. Reconnecting reactivates it."""
    connection = get_connection(session, name=name)
    connection.status = "revoked"
    connection.access_token_enc = None
    connection.refresh_token_enc = None
    connection.token_version += 1
    bump_revision(session)
    return connection


def connect_with_api_key(
    session: Session, vault: Vault, *, provider: str, name: str, api_key: str, scopes: list[str]
) -> Connection:
    """A connection from a pasted API key (for providers that offer one): stored sealed, like a token.

    The hub scopes chosen still bound what agents may be granted on it; ask the provider for a key
    restricted to the same permissions (e.g. a Stripe restricted key).
    """
    connector = CONNECTORS.get(provider)
    if connector is None:
        raise NotFound(f"unknown provider {provider!r}")
    mode = connector.manifest.api_key
    if mode is None:
        raise InvalidArguments(f"{provider} connects only through OAuth")
    validate_name(name, "connection")
    if not re.fullmatch(mode.pattern, api_key):
        raise InvalidArguments(f"that is not a valid {provider} API key: expected {mode.hint}")
    unknown = sorted(set(scopes) - set(connector.manifest.scope_map))
    if not scopes or unknown:
        raise InvalidArguments(f"choose scopes {provider} serves; not {', '.join(unknown) or '(none chosen)'}")
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        connection = Connection(name=name, provider=provider)
        session.add(connection)
        session.flush()
    elif connection.provider != provider:
        raise InvalidArguments(f"connection {name!r} belongs to {connection.provider}")
    connection.status = "active"
    connection.hub_scopes = sorted(set(scopes))
    connection.requested_scopes = []
    connection.granted_scopes = [API_KEY_GRANT]
    connection.access_token_enc = vault.encrypt(api_key, context=token_context(connection.id, "access_token"))
    connection.refresh_token_enc = None
    connection.expires_at = None
    connection.token_version += 1
    connection.last_refresh_at = utcnow()
    connection.last_error = None
    bump_revision(session)
    return connection
