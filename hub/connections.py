"""Connections: listing and revoking. Connecting lives in hub.oauth, token upkeep in hub.tokens."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.agents import bump_revision, get_connection
from hub.models import Connection

__all__ = ["list_connections", "revoke_connection"]


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
