"""Google's OAuth 2.0 facts, shared by every Google connector (one OAuth client serves them all).

Access tokens live an hour (`expires_in` 3599) and refresh tokens do not rotate. A refresh token is issued
only for `access_type=offline`, and again on a reconnect only with `prompt=consent`; without it, reconnecting
an account would leave the hub with no refresh token. `include_granted_scopes=true` is Google's incremental
authorisation: the new token also carries what this user already granted this client, so reconnecting
Drive does not drop Gmail (the hub records the scopes Google reports as granted). PKCE S256 is supported
for web clients too, and the revocation endpoint ends the whole grant.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from connectors.base import Manifest

__all__ = [
    "API_BASE",
    "AUTHORIZE_PARAMS",
    "AUTHORIZE_URL",
    "REVOKE_URL",
    "SETTINGS_KEY",
    "TOKEN_URL",
    "google_manifest",
]

SETTINGS_KEY: Final = "google"  # SWITCHBOARD_GOOGLE_CLIENT_ID / _SECRET / _API_BASE / _AUTHORIZE_URL / _TOKEN_URL
AUTHORIZE_URL: Final = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL: Final = "https://oauth2.googleapis.com/token"
REVOKE_URL: Final = "https://oauth2.googleapis.com/revoke"
# Drive lives under /drive/v3 and Gmail under /gmail/v1 of this one host (gmail.googleapis.com is Gmail's
# own host, but www.googleapis.com serves it too), so both connectors keep one API base.
API_BASE: Final = "https://www.googleapis.com"
AUTHORIZE_PARAMS: Final = MappingProxyType(
    {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
)


def google_manifest(
    *, name: str, display_name: str, scope_map: Mapping[str, tuple[str, ...]], exclusive_scopes: tuple[str, ...] = ()
) -> Manifest:
    """A Google connector's manifest: everything but its name and scopes is the same for every Google API."""
    return Manifest(
        name=name,
        display_name=display_name,
        settings_key=SETTINGS_KEY,
        authorize_url=AUTHORIZE_URL,
        token_url=TOKEN_URL,
        api_base=API_BASE,
        scope_map=scope_map,
        scope_separator=" ",
        token_endpoint_auth_method="client_secret_post",
        pkce=True,
        authorize_params=AUTHORIZE_PARAMS,
        revoke_url=REVOKE_URL,
        exclusive_scopes=exclusive_scopes,
    )
