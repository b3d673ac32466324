"""Connecting a provider account: the authorize redirect (state + PKCE) and the callback.

The state is 256 random bits, stored only as a hash with the PKCE verifier (encrypted) and what was
asked for; it expires and is consumed by the first callback that presents it, so a replayed callback
finds nothing. The provider is asked only for the provider scopes the chosen hub scopes need.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread
import httpx2
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors import CONNECTORS
from hub.agents import bump_revision, validate_name
from hub.credentials import hash_secret
from hub.db import Database
from hub.errors import BadRequest, InvalidArguments, NotFound, UpstreamError
from hub.models import Connection, OAuthState, utcnow
from hub.providers import ProviderEndpoints, oauth_client
from hub.settings import Settings
from hub.tokens import expires_at_from, token_context
from hub.vault import Vault

__all__ = ["OAuthFlow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    provider: str
    connection_name: str
    hub_scopes: list[str]
    requested_scopes: list[str]
    code_verifier: str


class OAuthFlow:
    def __init__(
        self, *, db: Database, vault: Vault, settings: Settings, providers: dict[str, ProviderEndpoints]
    ) -> None:
        self._db = db
        self._vault = vault
        self._settings = settings
        self._providers = providers

    def _endpoints(self, provider: str) -> ProviderEndpoints:
        endpoints = self._providers.get(provider)
        if endpoints is None:
            raise NotFound(f"unknown provider {provider!r}; known: {', '.join(sorted(self._providers))}")
        if not endpoints.configured:
            key = endpoints.manifest.settings_key.upper()
            raise BadRequest(f"{provider} is not configured: set SWITCHBOARD_{key}_CLIENT_ID and _CLIENT_SECRET")
        return endpoints

    async def begin(self, *, provider: str, name: str, scopes: list[str]) -> str:
        """Record a pending connect and return the provider's authorize URL to redirect the admin to."""
        endpoints = self._endpoints(provider)
        validate_name(name, "connection")
        manifest = endpoints.manifest
        if not scopes:
            raise InvalidArguments(f"choose at least one scope; {provider} serves {', '.join(manifest.scope_map)}")
        unknown = [s for s in scopes if s not in manifest.scope_map]
        if unknown:
            raise InvalidArguments(f"{provider} does not serve {', '.join(unknown)}")
        hub_scopes = sorted(set(scopes))
        requested = manifest.provider_scopes(hub_scopes)
        state = secrets.token_urlsafe(32)
        verifier = generate_token(64)

        def record(session: Session) -> None:
            session.add(
                OAuthState(
                    state_hash=hash_secret(state),
                    provider=provider,
                    connection_name=name,
                    hub_scopes=hub_scopes,
                    requested_scopes=requested,
                    code_verifier_enc=self._vault.encrypt(verifier, context=f"oauth_state:{hash_secret(state)}"),
                    expires_at=utcnow() + timedelta(seconds=self._settings.oauth_state_ttl),
                )
            )

        await self._db.run(record)
        with oauth_client(endpoints, redirect_uri=self._settings.redirect_uri, timeout=10) as client:
            url, _ = client.create_authorization_url(
                endpoints.authorize_url,
                state=state,
                code_verifier=verifier if manifest.pkce else None,
                scope=manifest.scope_separator.join(requested),
                **dict(manifest.authorize_params),
            )
        return str(url)

    async def complete(self, *, state: str | None, code: str | None, error: str | None) -> Connection:
        """Consume the state, exchange the code, and store the connection `active`."""
        if not state:
            raise BadRequest("the callback carries no state")
        pending = await self._db.run(lambda s: self._consume(s, state))
        if error:
            raise BadRequest(f"the provider did not grant access ({error[:100]})")
        if not code:
            raise BadRequest("the callback carries no code")
        endpoints = self._endpoints(pending.provider)
        token = await anyio.to_thread.run_sync(self._exchange, endpoints, code, pending.code_verifier)
        return await self._db.run(lambda s: self._store(s, pending, token))

    def _consume(self, session: Session, state: str) -> _Pending:
        state_hash = hash_secret(state)
        # One UPDATE both checks and spends the state, so two racing callbacks cannot both win.
        spent = session.execute(
            update(OAuthState)
            .where(
                OAuthState.state_hash == state_hash,
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > utcnow(),
            )
            .values(used_at=utcnow())
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            raise BadRequest("unknown, expired or already used state: start the connection again")
        row = session.scalar(select(OAuthState).where(OAuthState.state_hash == state_hash))
        assert row is not None
        return _Pending(
            provider=row.provider,
            connection_name=row.connection_name,
            hub_scopes=list(row.hub_scopes),
            requested_scopes=list(row.requested_scopes),
            code_verifier=self._vault.decrypt(row.code_verifier_enc, context=f"oauth_state:{state_hash}"),
        )

    def _exchange(self, endpoints: ProviderEndpoints, code: str, verifier: str) -> dict[str, object]:
        try:
            with oauth_client(
                endpoints, redirect_uri=self._settings.redirect_uri, timeout=self._settings.provider_timeout
            ) as client:
                token = client.fetch_token(
                    endpoints.token_url,
                    code=code,
                    code_verifier=verifier if endpoints.manifest.pkce else None,
                )
        except OAuthError as exc:
            raise BadRequest(f"the provider refused the authorization code ({exc.error})") from None
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("code exchange with %s failed: %s", endpoints.manifest.name, type(exc).__name__)
            raise UpstreamError(f"{endpoints.manifest.name} token endpoint failed") from None
        if not token.get("access_token"):
            raise UpstreamError(f"{endpoints.manifest.name} answered without an access token")
        return dict(token)

    def _store(self, session: Session, pending: _Pending, token: dict[str, object]) -> Connection:
        connection = session.scalar(select(Connection).where(Connection.name == pending.connection_name))
        if connection is None:
            connection = Connection(name=pending.connection_name, provider=pending.provider)
            session.add(connection)
            session.flush()
        elif connection.provider != pending.provider:
            raise BadRequest(f"connection {connection.name!r} belongs to {connection.provider}")
        granted = token.get("scope")
        manifest = CONNECTORS[pending.provider].manifest
        connection.status = "active"
        connection.account = manifest.account_of(token) or connection.account
        connection.hub_scopes = pending.hub_scopes
        connection.requested_scopes = pending.requested_scopes
        connection.granted_scopes = (
            sorted(str(granted).replace(",", " ").split()) if granted else pending.requested_scopes
        )
        connection.access_token_enc = self._vault.encrypt(
            str(token["access_token"]), context=token_context(connection.id, "access_token")
        )
        refresh = token.get("refresh_token")
        connection.refresh_token_enc = (
            self._vault.encrypt(str(refresh), context=token_context(connection.id, "refresh_token"))
            if refresh
            else None
        )
        connection.expires_at = expires_at_from(token)
        connection.token_version += 1
        connection.last_error = None
        connection.last_refresh_at = utcnow()
        bump_revision(session)
        log.info("connection %s (%s) connected with %s", connection.name, manifest.name, connection.granted_scopes)
        return connection

    async def revoke_at_provider(self, *, name: str) -> bool:
        """Ask the provider to revoke the connection's grant (RFC 7009) where it offers an endpoint.

        Best effort: the hub forgets the tokens either way; this also stops a copy of them working.
        """

        def read(session: Session) -> tuple[ProviderEndpoints, str, str] | None:
            row = session.scalar(select(Connection).where(Connection.name == name))
            if row is None:
                raise NotFound(f"no connection named {name!r}")
            endpoints = self._providers.get(row.provider)
            sealed, kind = (
                (row.refresh_token_enc, "refresh_token")
                if row.refresh_token_enc
                else (row.access_token_enc, "access_token")
            )
            if endpoints is None or endpoints.revoke_url is None or sealed is None:
                return None
            return endpoints, self._vault.decrypt(sealed, context=token_context(row.id, kind)), kind

        found = await self._db.run(read)
        if found is None:
            return False
        endpoints, token, kind = found

        def revoke() -> bool:
            assert endpoints.revoke_url is not None
            with oauth_client(endpoints, redirect_uri=self._settings.redirect_uri, timeout=10) as client:
                answer = client.revoke_token(endpoints.revoke_url, token=token, token_type_hint=kind)
            return bool(answer.status_code < 400)

        try:
            revoked = await anyio.to_thread.run_sync(revoke)
        except (httpx2.HTTPError, OAuthError) as exc:
            log.warning("revoking connection %s at %s failed: %s", name, endpoints.manifest.name, type(exc).__name__)
            return False
        if not revoked:
            log.warning("%s refused to revoke connection %s's token", endpoints.manifest.name, name)
        return revoked
