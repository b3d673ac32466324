"""Slack's OAuth v2 and Web API facts.

Bot tokens never expire unless the app turns on token rotation; then Slack also returns a refresh token and
`expires_in` (12 hours), and refreshing goes through the same `oauth.v2.access` method. Scopes travel
comma-separated; the granted ones come back in `scope`, the workspace in `team.name`. Slack answers token
errors as HTTP 200 `{"ok": false, "error": ...}`, which the compliance hooks turn into standard OAuth errors.
Slack recommends HTTP Basic for the client credentials and accepts PKCE (`code_verifier`).
"""

from connectors.base import Manifest
from connectors.slack.oauth import normalise_token_response

MANIFEST = Manifest(
    name="slack",
    display_name="Slack",
    settings_key="slack",
    authorize_url="https://slack.com/oauth/v2/authorize",
    token_url="https://slack.com/api/oauth.v2.access",
    api_base="https://slack.com/api",
    scope_map={
        # Reading covers public channels and the private ones the app was invited to, their messages and
        # threads, and looking people up by id or email.
        "messaging.chat.read": (
            "channels:read",
            "groups:read",
            "channels:history",
            "groups:history",
            "users:read",
            "users:read.email",
        ),
        "messaging.chat.send": ("chat:write",),
    },
    scope_separator=",",
    token_endpoint_auth_method="client_secret_basic",
    pkce=True,
    compliance_hooks={
        "access_token_response": normalise_token_response,
        "refresh_token_response": normalise_token_response,
    },
    account_path="team.name",
)
