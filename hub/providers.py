"""Where each provider lives for this hub: its URLs and client credentials, resolved from settings.

A setting (`SWITCHBOARD_HUBSPOT_API_BASE`, …) wins; in sandbox mode a provider without credentials
points at the hub's own sandbox (`<base url>/sandbox/<provider>` + the real URL's path); otherwise the
manifest's real URLs.
"""

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.integrations.httpx_client import OAuth2Client

from connectors import CONNECTORS
from connectors.base import Manifest
from hub.settings import Settings

__all__ = ["SANDBOX_CLIENT_ID", "ProviderEndpoints", "oauth_client", "resolve_providers"]

SANDBOX_CLIENT_ID = "switchboard-sandbox"


@dataclass(frozen=True, slots=True)
class ProviderEndpoints:
    manifest: Manifest
    authorize_url: str
    token_url: str
    api_base: str
    client_id: str | None
    client_secret: str | None = None
    sandboxed: bool = False
    revoke_url: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.client_id)


def _sandbox_url(base: str, real_url: str) -> str:
    return base + urlsplit(real_url).path.rstrip("/")


def _moved(revoke_url: str | None, real_token_url: str, token_url: str | None) -> str | None:
    """The revocation endpoint follows the token endpoint when a setting moves that to another host."""
    if revoke_url is None or token_url is None:
        return revoke_url
    moved = urlsplit(token_url)
    return f"{moved.scheme}://{moved.netloc}{urlsplit(revoke_url).path}"


def resolve_providers(settings: Settings) -> dict[str, ProviderEndpoints]:
    resolved = {}
    for name, connector in CONNECTORS.items():
        manifest = connector.manifest
        own = settings.provider(manifest.settings_key)
        # Stripe Connect authenticates the token exchange with the platform's secret key.
        credential = own.client_secret or own.secret_key
        secret = credential.get_secret_value() if credential else None
        sandboxed = settings.sandbox and not own.client_id
        if sandboxed:
            base = f"{settings.base_url.rstrip('/')}/sandbox/{name}"
            resolved[name] = ProviderEndpoints(
                manifest,
                authorize_url=own.authorize_url or _sandbox_url(base, manifest.authorize_url),
                token_url=own.token_url or _sandbox_url(base, manifest.token_url),
                api_base=own.api_base or _sandbox_url(base, manifest.api_base),
                client_id=SANDBOX_CLIENT_ID,
                # Lives only in this process's memory, shared with the sandbox it mounts.
                client_secret=secrets.token_urlsafe(24),
                sandboxed=True,
                revoke_url=_sandbox_url(base, manifest.revoke_url) if manifest.revoke_url else None,
            )
        else:
            resolved[name] = ProviderEndpoints(
                manifest,
                authorize_url=own.authorize_url or manifest.authorize_url,
                token_url=own.token_url or manifest.token_url,
                api_base=own.api_base or manifest.api_base,
                client_id=own.client_id,
                client_secret=secret,
                revoke_url=_moved(manifest.revoke_url, manifest.token_url, own.token_url),
            )
    return resolved


def oauth_client(endpoints: ProviderEndpoints, *, redirect_uri: str, timeout: float) -> OAuth2Client:
    manifest = endpoints.manifest
    client = OAuth2Client(
        client_id=endpoints.client_id,
        client_secret=endpoints.client_secret,
        token_endpoint_auth_method=manifest.token_endpoint_auth_method,
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if manifest.pkce else None,
        timeout=timeout,
        follow_redirects=False,
    )
    for hook, fix in manifest.compliance_hooks.items():
        client.register_compliance_hook(hook, fix)
    return client
