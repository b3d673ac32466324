"""What Google Drive and Gmail share: one OAuth client and its facts, the SDK client, the error mapping."""

from connectors.google_common.client import GoogleClient
from connectors.google_common.errors import translate_http_error
from connectors.google_common.oauth import (
    API_BASE,
    AUTHORIZE_PARAMS,
    AUTHORIZE_URL,
    REVOKE_URL,
    SETTINGS_KEY,
    TOKEN_URL,
    google_manifest,
)

__all__ = [
    "API_BASE",
    "AUTHORIZE_PARAMS",
    "AUTHORIZE_URL",
    "REVOKE_URL",
    "SETTINGS_KEY",
    "TOKEN_URL",
    "GoogleClient",
    "google_manifest",
    "translate_http_error",
]
