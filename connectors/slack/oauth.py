"""Slack's token endpoint answers, made standard for authlib (its `compliance_hook` mechanism).

`oauth.v2.access` answers failures as HTTP 200 `{"ok": false, "error": "invalid_code"}`, which authlib would
store as a token without an access token. The hook rewrites such an answer to RFC 6749's
`{"error": "invalid_grant", "error_description": "invalid_code"}`, so authlib raises `OAuthError` and the hub
marks a connection whose refresh token Slack no longer accepts as needing re-authorisation. On success it
drops `ok`, says `token_type` is `Bearer` (Slack says `bot`, and the token is sent as a bearer token) and
removes any user token nested under `authed_user`: the hub asks for bot scopes only and must not keep a
credential it did not ask for.
"""

from collections.abc import Mapping
from typing import Any

__all__ = ["normalise_token_response", "oauth_error_of"]

_OAUTH_ERRORS: Mapping[str, str] = {
    # The grant (code, refresh token, redirect binding or PKCE verifier) is not valid (RFC 6749 5.2).
    "invalid_code": "invalid_grant",
    "code_already_used": "invalid_grant",
    "invalid_refresh_token": "invalid_grant",
    "bad_redirect_uri": "invalid_grant",
    "oauth_authorization_url_mismatch": "invalid_grant",
    "invalid_code_verifier": "invalid_grant",
    "token_revoked": "invalid_grant",
    "token_expired": "invalid_grant",
    "app_uninstalled": "invalid_grant",
    "invalid_grant": "invalid_grant",
    # The app's own credentials are wrong.
    "invalid_client_id": "invalid_client",
    "bad_client_secret": "invalid_client",
    "invalid_client": "invalid_client",
    "invalid_grant_type": "unsupported_grant_type",
    # Passing conditions: the hub keeps the connection and tries again later.
    "ratelimited": "temporarily_unavailable",
    "internal_error": "temporarily_unavailable",
    "fatal_error": "temporarily_unavailable",
    "service_unavailable": "temporarily_unavailable",
    "request_timeout": "temporarily_unavailable",
}


def oauth_error_of(slack_error: str) -> str:
    """The RFC 6749 error code for one of Slack's `oauth.v2.access` error strings."""
    return _OAUTH_ERRORS.get(slack_error, "invalid_request")


class _Normalised:
    """A token endpoint response with a standard JSON body; everything else is the original response's."""

    def __init__(self, original: Any, body: dict[str, Any], status_code: int) -> None:
        self._original = original
        self._body = body
        self.status_code = status_code
        self.headers = original.headers

    def json(self) -> dict[str, Any]:
        return self._body

    def raise_for_status(self) -> Any:
        return self._original.raise_for_status()


def _standard(body: Mapping[str, Any]) -> dict[str, Any]:
    if body.get("ok") is not True:
        error = body.get("error")
        code = error[:100] if isinstance(error, str) and error else "unknown_error"
        return {"error": oauth_error_of(code), "error_description": code}
    token = {k: v for k, v in body.items() if k not in ("ok", "warning", "response_metadata")}
    token["token_type"] = "Bearer"
    user = token.get("authed_user")
    if isinstance(user, Mapping):
        token["authed_user"] = {k: v for k, v in user.items() if k in ("id", "scope")}
    return token


def normalise_token_response(response: Any) -> Any:
    """authlib hook for `access_token_response` and `refresh_token_response` (it gets the HTTP response)."""
    try:
        body = response.json()
    except ValueError:
        return response  # not JSON: authlib raises the HTTP error itself
    if not isinstance(body, Mapping) or "ok" not in body:
        return response  # already standard (a proxy in front of Slack, or a test double)
    standard = _standard(body)
    status = response.status_code
    if "error" in standard and status < 400:
        status = 400  # RFC 6749: a refused grant is a 400
    return _Normalised(response, standard, status)
