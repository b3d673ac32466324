"""Slack's OAuth v2 for one registered app: the consent page at `/oauth/v2/authorize` and `oauth.v2.access`.

Like Slack: scopes are comma-separated; the code lives ten minutes and works once; the client authenticates
with HTTP Basic or `client_id`/`client_secret` parameters; PKCE is checked when the authorize request carried
a challenge; every answer of the token method is HTTP 200 JSON with `ok`, failures as `{"ok": false,
"error": "invalid_code"}`. Bot tokens never expire unless token rotation is on: then the exchange also returns
a refresh token and `expires_in`, and each refresh spends the refresh token it was given.
"""

import html
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response
from hub.sandbox._oauth_common import (
    NO_STORE,
    absolute_http_url,
    basic_or_form_client,
    consent_form,
    consent_page,
    s256,
    same,
    with_query,
)

__all__ = ["CODE_TTL", "KNOWN_SCOPES", "AuthFailure", "OAuthServer"]

CODE_TTL = 600.0
_clock: Callable[[], float] = time.monotonic  # tests move time forward by replacing this
AuthFailure = Literal["not_authed", "invalid_auth", "token_expired", "token_revoked"]

# Bot scopes this sandbox knows (a subset of Slack's), with the words Slack's consent page uses.
KNOWN_SCOPES: Mapping[str, str] = {
    "channels:read": "View basic information about public channels in your workspace",
    "channels:history": "View messages and other content in public channels that the app has been added to",
    "groups:read": "View basic information about private channels that the app has been added to",
    "groups:history": "View messages and other content in private channels that the app has been added to",
    "im:read": "View basic information about direct messages that the app has been added to",
    "im:history": "View messages and other content in direct messages that the app has been added to",
    "users:read": "View people in your workspace",
    "users:read.email": "View email addresses of people in your workspace",
    "chat:write": "Send messages as the app",
    "chat:write.public": "Send messages to channels the app isn't a member of",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d1c1d}"
    "button{font:inherit;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:4px;cursor:pointer}"
    "button[value=approve]{background:#007a5a;color:#fff;border:1px solid #007a5a}"
    "button:focus-visible{outline:3px solid #1264a3;outline-offset:2px}"
)
_AUTHORIZE_FIELDS = (
    "client_id",
    "scope",
    "user_scope",
    "redirect_uri",
    "state",
    "team",
    "code_challenge",
    "code_challenge_method",
)


@dataclass(slots=True)
class _Code:
    redirect_uri: str | None
    scopes: frozenset[str]
    challenge: str | None
    expires_at: float


@dataclass(slots=True)
class _AccessToken:
    scopes: frozenset[str]
    expires_at: float | None  # None: a bot token without rotation never expires
    revoked: bool = False


def _error_page(message: str) -> HTMLResponse:
    body = f'<p role="alert">{html.escape(message)}</p>'
    return consent_page("Something's not quite right", body, style=_STYLE, status_code=400)


def _scopes(raw: str) -> list[str]:
    return [s.strip() for s in raw.split(",") if s.strip()]


def _fail(error: str) -> Response:
    return json_response({"ok": False, "error": error}, 200, NO_STORE)


class OAuthServer:
    """Codes and tokens for one app installed in one workspace; all state guarded by the sandbox's lock."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int,
        rotate_refresh_tokens: bool,
        lock: threading.Lock,
        stats: SandboxStats,
        installation: Mapping[str, Any],
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._ttl = access_token_ttl
        self._rotate = rotate_refresh_tokens
        self._lock = lock
        self._stats = stats
        self._installation = dict(installation)  # app_id, bot_user_id, team, authed_user
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, frozenset[str]] = {}
        # Every token ever minted, so tests can scan the hub's storage and logs for any of them.
        self.issued: list[str] = []

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/v2/authorize", self._authorize_page, methods=["GET"]),
            Route("/oauth/v2/authorize", self._authorize_decision, methods=["POST"]),
            Route("/api/oauth.v2.access", self._token, methods=["GET", "POST"]),
        ]

    # -- used by the API methods and the control endpoints -----------------------------------------------

    def authenticate(self, token: str | None) -> frozenset[str] | AuthFailure:
        """The scopes a bot token carries, or Slack's error for it."""
        if not token:
            return "not_authed"
        record = self._access.get(token)  # dict read: atomic under the GIL
        if record is None:
            return "invalid_auth"
        if record.revoked:
            return "token_revoked"
        if record.expires_at is not None and record.expires_at <= _clock():
            return "token_expired"
        return record.scopes

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (Slack answers `token_expired`)."""
        with self._lock:
            past = _clock() - 1
            for token in self._access.values():
                token.expires_at = past

    def revoke_all(self) -> None:
        """Uninstall the app: every access and refresh token stops working."""
        with self._lock:
            for token in self._access.values():
                token.revoked = True
            self._refresh.clear()

    # -- authorize -----------------------------------------------------------------------------------------

    def _check_request(self, params: Mapping[str, str]) -> str | None:
        if not same(params.get("client_id", ""), self._client_id):
            return "Invalid client_id parameter: no app is registered with this id."
        redirect = params.get("redirect_uri")
        if redirect is None:
            return "No redirect_uri was given, and this sandbox app has none configured."
        if not absolute_http_url(redirect):
            return "redirect_uri did not match any configured URIs: it is not an absolute http(s) URL."
        scopes = _scopes(params.get("scope", ""))
        if not scopes:
            return "invalid_scope: the request asks for no bot scope."
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            return f"invalid_scope: {', '.join(unknown)}"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256 when a code_challenge is given."
        return None

    async def _authorize_page(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in _AUTHORIZE_FIELDS}
        if (problem := self._check_request(params)) is not None:
            return _error_page(problem)
        items = "".join(
            f"<li>{html.escape(KNOWN_SCOPES[s])} (<code>{html.escape(s)}</code>)</li>" for s in _scopes(params["scope"])
        )
        team = html.escape(str(self._installation["team"]["name"]))
        host = urlsplit(params["redirect_uri"]).netloc
        body = (
            f"<p>The app <strong>{html.escape(params['client_id'])}</strong> is requesting permission to access "
            f"the <strong>{team}</strong> Slack workspace (sandbox). It will be able to:</p>"
            f'<ul aria-label="Requested permissions">{items}</ul>'
            f"<p>You will then be sent back to <strong>{html.escape(host)}</strong>.</p>"
            f"{consent_form(request, params, 'Allow')}"
        )
        return consent_page(f"Install on {self._installation['team']['name']} (sandbox)", body, style=_STYLE)

    async def _authorize_decision(self, request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if k in _AUTHORIZE_FIELDS and isinstance(v, str)}
        # The hidden fields come back from the browser: validate them again rather than trust the page.
        if (problem := self._check_request(params)) is not None:
            return _error_page(problem)
        decision = form.get("decision")
        state = params.get("state", "")
        if decision == "deny":
            return RedirectResponse(with_query(params["redirect_uri"], {"error": "access_denied", "state": state}), 302)
        if decision != "approve":
            return _error_page("decision must be approve or deny.")
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Code(
                params.get("redirect_uri"),
                frozenset(_scopes(params["scope"])),
                params.get("code_challenge") or None,
                _clock() + CODE_TTL,
            )
        return RedirectResponse(with_query(params["redirect_uri"], {"code": code, "state": state}), 302)

    # -- oauth.v2.access ---------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = dict(request.query_params)
        if request.method == "POST":
            form |= {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        grant_type = form.get("grant_type") or "authorization_code"
        with self._lock:
            self._stats.count_token_request(grant_type)
        client_id, client_secret = basic_or_form_client(request, form)
        if not same(client_id, self._client_id):
            return _fail("invalid_client_id")
        if not same(client_secret, self._client_secret):
            return _fail("bad_client_secret")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return _fail("invalid_grant_type")

    def _exchange_code(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            # Popped on first presentation, even if the rest fails: a code can never be tried twice.
            code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= _clock():
                return _fail("invalid_code")
            if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                return _fail("bad_redirect_uri")
            if code.challenge is not None:
                verifier = form.get("code_verifier", "")
                if not verifier or not same(s256(verifier), code.challenge):
                    return _fail("invalid_code_verifier")
            return self._issue(code.scopes)

    def _refresh_grant(self, form: Mapping[str, str]) -> Response:
        presented = form.get("refresh_token", "")
        with self._lock:
            scopes = self._refresh.pop(presented, None)  # rotation: a refresh token works once
            if scopes is None:
                return _fail("invalid_refresh_token")
            return self._issue(scopes)

    def _issue(self, scopes: frozenset[str]) -> Response:
        """Mint tokens; called with the lock held so a concurrent revoke-all cannot be undone."""
        body: dict[str, Any] = {
            "ok": True,
            "app_id": self._installation["app_id"],
            "authed_user": self._installation["authed_user"],
            "scope": ",".join(sorted(scopes)),
            "token_type": "bot",
            "bot_user_id": self._installation["bot_user_id"],
            "team": self._installation["team"],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        team_number = self._installation["team_number"]
        if self._rotate:
            access = f"xoxe.xoxb-1-{secrets.token_urlsafe(36)}"
            refresh = f"xoxe-1-{secrets.token_urlsafe(36)}"
            self._access[access] = _AccessToken(scopes, _clock() + self._ttl)
            self._refresh[refresh] = scopes
            self.issued += [access, refresh]
            body |= {"access_token": access, "refresh_token": refresh, "expires_in": self._ttl}
        else:
            access = f"xoxb-{team_number}-{secrets.randbelow(10**12):012d}-{secrets.token_hex(12)}"
            self._access[access] = _AccessToken(scopes, None)
            self.issued.append(access)
            body["access_token"] = access
        return json_response(body, 200, NO_STORE)
