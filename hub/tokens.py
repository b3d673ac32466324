"""Provider tokens at call time: decrypted once, refreshed when due, single-flight across processes.

Within a process an asyncio lock per connection makes concurrent callers share one refresh; across
processes a row lock on the connection does (hub.db.lock_row), and the refresher re-reads the row after
taking it, so a token another replica just refreshed is used rather than refreshed again. A rotated
refresh token is committed before the new access token is used.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import httpx2
from authlib.integrations.base_client import OAuthError
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import CONNECTORS
from connectors.base import ProviderClient
from hub.agents import bump_revision
from hub.db import Database, lock_row
from hub.errors import ConnectionNeedsReauth, SwitchboardError, UpstreamError, UpstreamTimeout
from hub.metrics import REFRESHES
from hub.models import Connection, utcnow
from hub.policy_cache import ConnectionInfo
from hub.providers import ProviderEndpoints, oauth_client
from hub.settings import Settings
from hub.vault import Vault

__all__ = ["TokenManager", "expires_at_from", "token_context"]

log = logging.getLogger(__name__)
# Refresh on the hot path only when the token is this close to expiry; the background task
# refreshes earlier (settings.refresh_margin) so calls rarely wait.
_CALL_MARGIN = timedelta(seconds=60)


def token_context(connection_id: int, kind: str) -> str:
    return f"connection:{connection_id}:{kind}"


def expires_at_from(token: dict[str, Any]) -> datetime | None:
    if token.get("expires_at"):
        return datetime.fromtimestamp(float(token["expires_at"]), tz=utcnow().tzinfo)
    if token.get("expires_in"):
        return utcnow() + timedelta(seconds=float(token["expires_in"]))
    return None


@dataclass(slots=True)
class _Live:
    version: int
    expires_at: datetime | None
    client: ProviderClient

    def due(self, margin: timedelta) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= utcnow()


@dataclass(frozen=True, slots=True)
class _Fresh:
    version: int
    access_token: str
    expires_at: datetime | None


class TokenManager:
    def __init__(
        self, *, db: Database, vault: Vault, settings: Settings, providers: dict[str, ProviderEndpoints]
    ) -> None:
        self._db = db
        self._vault = vault
        self._settings = settings
        self._providers = providers
        self._live: dict[int, _Live] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        # Set when a refresh changed a connection's status, so the hub reloads its policy snapshot.
        self.on_status_change: Callable[[], Awaitable[None]] | None = None

    async def client(self, conn: ConnectionInfo) -> tuple[ProviderClient, int]:
        """A ready provider client for `conn`, refreshing first if its token is about to expire."""
        live = self._live.get(conn.id)
        if live is None or live.version < conn.token_version:
            live = self._install(conn, await self._db.run(lambda s: self._read(s, conn.id)))
        if live.due(_CALL_MARGIN):
            live = await self.refresh(conn, stale_version=live.version)
        return live.client, live.version

    async def refresh(self, conn: ConnectionInfo, *, stale_version: int) -> _Live:
        """Replace the token of version `stale_version`; callers that lose the race reuse the winner's."""
        lock = self._locks.setdefault(conn.id, asyncio.Lock())
        async with lock:
            live = self._live.get(conn.id)
            if live is not None and live.version != stale_version and not live.due(_CALL_MARGIN):
                return live
            try:
                fresh = await anyio.to_thread.run_sync(self._refresh_locked, conn.id, stale_version)
            except ConnectionNeedsReauth:
                if self.on_status_change is not None:
                    await self.on_status_change()
                raise
            return self._install(conn, fresh)

    def close(self) -> None:
        for live in self._live.values():
            live.client.close()
        self._live.clear()

    def _install(self, conn: ConnectionInfo, fresh: _Fresh) -> _Live:
        endpoints = self._providers[conn.provider]
        client = CONNECTORS[conn.provider].make_client(
            access_token=fresh.access_token,
            api_base=endpoints.api_base,
            timeout=self._settings.provider_timeout,
        )
        old = self._live.get(conn.id)
        live = _Live(fresh.version, fresh.expires_at, client)
        self._live[conn.id] = live
        if old is not None:
            # In-flight calls may still hold the old client; its pool closes when they finish with it.
            asyncio.get_running_loop().call_later(self._settings.provider_timeout + 5, old.client.close)
        return live

    def _read(self, session: Session, connection_id: int) -> _Fresh:
        row = session.get(Connection, connection_id, populate_existing=True)
        if row is None or row.status != "active" or not row.access_token_enc:
            raise ConnectionNeedsReauth(f"connection {row.name if row else connection_id!r} must be reconnected")
        token = self._vault.decrypt(row.access_token_enc, context=token_context(row.id, "access_token"))
        return _Fresh(row.token_version, token, row.expires_at)

    def _refresh_locked(self, connection_id: int, stale_version: int) -> _Fresh:
        # Failures are returned, not raised, so what they record on the row (status, last_error) commits.
        with self._db.session() as session:
            lock_row(session, "connections", connection_id)
            outcome = self._refresh_row(session, connection_id, stale_version)
        if isinstance(outcome, SwitchboardError):
            raise outcome
        return outcome

    def _refresh_row(self, session: Session, connection_id: int, stale_version: int) -> "_Fresh | SwitchboardError":
        row = session.get(Connection, connection_id, populate_existing=True)
        if row is None or row.status != "active":
            return ConnectionNeedsReauth(f"connection {connection_id} must be reconnected")
        if row.token_version != stale_version and not (
            row.expires_at is not None and row.expires_at - _CALL_MARGIN <= utcnow()
        ):
            return self._read(session, connection_id)  # another process refreshed meanwhile
        if not row.refresh_token_enc:
            return self._dead(session, row, "the provider gave no refresh token")
        used = row.refresh_token_enc
        refresh_token = self._vault.decrypt(used, context=token_context(row.id, "refresh_token"))
        endpoints = self._providers[row.provider]
        try:
            with oauth_client(
                endpoints, redirect_uri=self._settings.redirect_uri, timeout=self._settings.provider_timeout
            ) as oauth:
                token = oauth.refresh_token(endpoints.token_url, refresh_token=refresh_token)
        except OAuthError as exc:
            if exc.error != "invalid_grant":
                return self._failed(row, UpstreamError(f"{row.provider} refused to refresh the token ({exc.error})"))
            session.refresh(row)
            if row.refresh_token_enc != used:
                return self._read(session, connection_id)  # rotated by someone who skipped the lock
            return self._dead(session, row, "the provider says the grant is no longer valid (invalid_grant)")
        except httpx2.TimeoutException:
            return self._failed(row, UpstreamTimeout(f"{row.provider} token endpoint timed out"))
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("token refresh for connection %s failed: %s", row.name, type(exc).__name__)
            return self._failed(row, UpstreamError(f"{row.provider} token endpoint failed"))
        row.access_token_enc = self._vault.encrypt(token["access_token"], context=token_context(row.id, "access_token"))
        if token.get("refresh_token"):
            row.refresh_token_enc = self._vault.encrypt(
                token["refresh_token"], context=token_context(row.id, "refresh_token")
            )
        row.expires_at = expires_at_from(token)
        row.token_version += 1
        row.last_refresh_at = utcnow()
        row.last_error = None
        REFRESHES.labels(row.provider, "ok").inc()
        return _Fresh(row.token_version, token["access_token"], row.expires_at)

    @staticmethod
    def _failed(row: Connection, error: SwitchboardError) -> SwitchboardError:
        # A failed refresh is not a dead grant: the connection stays active and the next call retries.
        REFRESHES.labels(row.provider, "error").inc()
        row.last_error = error.detail
        return error

    @staticmethod
    def _dead(session: Session, row: Connection, why: str) -> SwitchboardError:
        row.status = "needs_reauth"
        row.last_error = why
        bump_revision(session)
        REFRESHES.labels(row.provider, "needs_reauth").inc()
        log.warning("connection %s needs re-authorisation: %s", row.name, why)
        return ConnectionNeedsReauth(f"connection {row.name!r} must be reconnected by an admin: {why}")

    async def refresh_due(self, connections: list[ConnectionInfo]) -> None:
        """Refresh idle connections whose tokens lapse within the margin, so calls never wait on it."""
        horizon = utcnow() + timedelta(seconds=self._settings.refresh_margin)
        ids = {c.id: c for c in connections if c.status == "active"}
        due = await self._db.run(
            lambda s: [
                (r.id, r.token_version)
                for r in s.scalars(
                    select(Connection).where(
                        Connection.id.in_(ids),
                        Connection.expires_at < horizon,
                        Connection.refresh_token_enc.is_not(None),
                    )
                )
            ]
        )
        for connection_id, version in due:
            try:
                await self.refresh(ids[connection_id], stale_version=version)
            except Exception as exc:
                log.warning("background refresh of %s failed: %s", ids[connection_id].name, exc)
