"""Google's OAuth 2.0 endpoints, emulated at Google's paths: consent (`/o/oauth2/v2/auth`), token (`/token`)
and revocation (`/revoke`), for one Google account and one registered OAuth client.

As Google does: PKCE (S256 or plain) when a challenge is sent; a refresh token only for
`access_type=offline`, and on a later consent only with `prompt=consent`; refresh tokens that do not rotate;
`include_granted_scopes=true` adds what this account already granted the client; the token's `scope` lists
what was granted; revoking any token of a grant ends the whole grant.
"""

import html
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
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

__all__ = ["SCOPE_DESCRIPTIONS", "GoogleOAuthServer"]

CODE_TTL = 600.0
_clock: Callable[[], float] = time.monotonic  # tests move time forward by replacing this
_AUTH = "https://www.googleapis.com/auth/"
# The scopes this sandbox knows, with the words Google's consent screen uses for them.
SCOPE_DESCRIPTIONS: Mapping[str, str] = {
    _AUTH + "drive": "See, edit, create, and delete all of your Google Drive files",
    _AUTH + "drive.readonly": "See and download all your Google Drive files",
    _AUTH + "drive.file": "See, edit, create, and delete only the specific Google Drive files you use with this app",
    _AUTH + "drive.metadata.readonly": "See information about your Google Drive files",
    _AUTH + "gmail.readonly": "View your email messages and settings",
    _AUTH + "gmail.send": "Send email on your behalf",
    _AUTH + "gmail.compose": "Manage drafts and send emails",
    _AUTH + "gmail.modify": "Read, compose, and send emails from your Gmail account",
    _AUTH + "gmail.labels": "See and edit your email labels",
    _AUTH + "gmail.metadata": "View your email message metadata such as labels and headers, but not the email body",
    "https://mail.google.com/": "Read, compose, send, and permanently delete all your email from Gmail",
    "openid": "Associate you with your personal info on Google",
    "email": "See your primary Google Account email address",
    "profile": "See your personal info, including any personal info you've made publicly available",
}
_AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "access_type",
    "prompt",
    "include_granted_scopes",
    "login_hint",
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#202124}"
    "button{font:inherit;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:4px;cursor:pointer}"
    "button[value=approve]{background:#1a73e8;color:#fff;border:1px solid #1a73e8}"
    "button:focus-visible{outline:3px solid #174ea6;outline-offset:2px}"
)


@dataclass(slots=True)
class _Code:
    redirect_uri: str
    scopes: frozenset[str]
    offline: bool
    challenge: str | None
    method: str
    expires_at: float


@dataclass(slots=True)
class _Token:
    grant: int
    scopes: frozenset[str]
    expires_at: float = float("inf")


def _error_page(error: str, message: str) -> HTMLResponse:
    body = f'<p role="alert"><strong>Error 400: {html.escape(error)}</strong></p><p>{html.escape(message)}</p>'
    return consent_page("Access blocked: Authorization Error", body, style=_STYLE, status_code=400)


def _token_error(error: str, description: str, status_code: int = 400) -> Response:
    body = {"error": error, "error_description": description}
    return json_response(body, status_code, NO_STORE)


class GoogleOAuthServer:
    """Codes, grants and tokens for one account and one OAuth client; state guarded by the sandbox's lock."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int,
        rotate_refresh_tokens: bool,
        lock: threading.Lock,
        stats: SandboxStats,
        account: str,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._ttl = access_token_ttl
        self._rotate = rotate_refresh_tokens
        self._lock = lock
        self._stats = stats
        self._account = account
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._granted: frozenset[str] = frozenset()  # what this account has granted the client so far
        self._offline_given = False
        self._grants = 0
        # Every token ever minted, so tests can scan the hub's storage and logs for any of them.
        self.issued: list[str] = []

    def routes(self) -> list[Route]:
        return [
            Route("/o/oauth2/v2/auth", self._authorize_page, methods=["GET"]),
            Route("/o/oauth2/v2/auth", self._authorize_decision, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
            Route("/revoke", self._revoke, methods=["POST"]),
        ]

    # -- used by the API routes and the control endpoints ------------------------------------------------

    def authenticate(self, authorization: str | None) -> frozenset[str] | Literal["missing", "expired"]:
        """The scopes a bearer token carries, or why it carries none."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return "missing"
        token = self._access.get(authorization[7:].strip())  # dict read: atomic under the GIL
        if token is None:
            return "missing"
        return "expired" if token.expires_at <= _clock() else token.scopes

    def expire_access_tokens(self) -> None:
        with self._lock:
            past = _clock() - 1
            for token in self._access.values():
                token.expires_at = past

    def revoke_all(self) -> None:
        """The account removes the app's access (as at myaccount.google.com/permissions)."""
        with self._lock:
            self._refresh.clear()
            self._access.clear()
            self._granted = frozenset()
            self._offline_given = False

    # -- authorize -----------------------------------------------------------------------------------------

    def _check_request(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        if not same(params.get("client_id", ""), self._client_id):
            return "invalid_client", "The OAuth client was not found."
        if not absolute_http_url(params.get("redirect_uri", "")):
            return "redirect_uri_mismatch", "The redirect URI in the request is missing or not an absolute URL."
        if params.get("response_type") != "code":
            return "unsupported_response_type", "response_type must be code."
        scopes = params.get("scope", "").split()
        if not scopes:
            return "invalid_request", "Missing required parameter: scope"
        if unknown := [s for s in scopes if s not in SCOPE_DESCRIPTIONS]:
            return "invalid_scope", f"Some requested scopes were invalid: {', '.join(unknown)}"
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in ("S256", "plain"):
            return "invalid_request", "Invalid code_challenge_method."
        if params.get("access_type", "online") not in ("online", "offline"):
            return "invalid_request", "Invalid access_type."
        return None

    async def _authorize_page(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in _AUTHORIZE_FIELDS}
        if (problem := self._check_request(params)) is not None:
            return _error_page(*problem)
        items = "".join(
            f"<li>{html.escape(SCOPE_DESCRIPTIONS[s])} (<code>{html.escape(s)}</code>)</li>"
            for s in params["scope"].split()
        )
        host = urlsplit(params["redirect_uri"]).netloc
        body = (
            f"<p><strong>{html.escape(params['client_id'])}</strong> wants access to your Google Account "
            f"<strong>{html.escape(self._account)}</strong> (sandbox). It will be able to:</p>"
            f'<ul aria-label="Requested permissions">{items}</ul>'
            f"<p>You will then be sent back to <strong>{html.escape(host)}</strong>.</p>"
            f"{consent_form(request, params, 'Continue')}"
        )
        return consent_page("Sign in with Google (sandbox)", body, style=_STYLE)

    async def _authorize_decision(self, request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if k in _AUTHORIZE_FIELDS and isinstance(v, str)}
        # The hidden fields come back from the browser: validate them again rather than trust the page.
        if (problem := self._check_request(params)) is not None:
            return _error_page(*problem)
        decision, state = form.get("decision"), params.get("state", "")
        if decision == "deny":
            return RedirectResponse(with_query(params["redirect_uri"], {"error": "access_denied", "state": state}), 302)
        if decision != "approve":
            return _error_page("invalid_request", "decision must be approve or deny.")
        code = "4/0" + secrets.token_urlsafe(32)
        requested = frozenset(params["scope"].split())
        with self._lock:
            scopes = requested | self._granted if params.get("include_granted_scopes") == "true" else requested
            self._granted |= requested
            offline = params.get("access_type") == "offline" and (
                not self._offline_given or "consent" in params.get("prompt", "").split()
            )
            self._offline_given |= offline
            self._codes[code] = _Code(
                params["redirect_uri"],
                scopes,
                offline,
                params.get("code_challenge") or None,
                params.get("code_challenge_method", "plain"),
                _clock() + CODE_TTL,
            )
        granted = " ".join(sorted(scopes))
        return RedirectResponse(
            with_query(params["redirect_uri"], {"state": state, "code": code, "scope": granted, "authuser": "0"}),
            302,
        )

    # -- token ---------------------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        grant_type = form.get("grant_type", "")
        with self._lock:
            self._stats.count_token_request(grant_type)
        client_id, client_secret = basic_or_form_client(request, form)
        if not (same(client_id, self._client_id) and same(client_secret, self._client_secret)):
            return _token_error("invalid_client", "Unauthorized", 401)
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return _token_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            # Spent on first presentation, even if the rest fails: a code can never be tried twice.
            code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= _clock():
                return _token_error("invalid_grant", "Malformed auth code.")
            if form.get("redirect_uri") != code.redirect_uri:
                return _token_error("redirect_uri_mismatch", "Bad Request")
            if code.challenge is not None:
                verifier = form.get("code_verifier", "")
                if not verifier:
                    return _token_error("invalid_grant", "Missing code verifier.")
                expected = s256(verifier) if code.method == "S256" else verifier
                if not same(expected, code.challenge):
                    return _token_error("invalid_grant", "Invalid code verifier.")
            elif form.get("code_verifier"):
                return _token_error("invalid_request", "code_verifier or verifier is not needed.")
            self._grants += 1
            return self._issue(self._grants, code.scopes, refresh=code.offline)

    def _refresh_grant(self, form: Mapping[str, str]) -> Response:
        presented = form.get("refresh_token", "")
        with self._lock:
            record = self._refresh.get(presented)
            if record is None:
                return _token_error("invalid_grant", "Token has been expired or revoked.")
            if self._rotate:
                del self._refresh[presented]  # rotation (Google does not rotate; the hub must cope if it did)
            return self._issue(record.grant, record.scopes, refresh=self._rotate)

    def _issue(self, grant: int, scopes: frozenset[str], *, refresh: bool) -> Response:
        """Mint tokens; called with the lock held so a concurrent revoke cannot be undone."""
        access = "ya29." + secrets.token_urlsafe(48)
        self._access[access] = _Token(grant, scopes, _clock() + self._ttl)
        self.issued.append(access)
        body: dict[str, object] = {
            "access_token": access,
            "expires_in": self._ttl,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }
        if refresh:
            token = "1//0" + secrets.token_urlsafe(48)
            self._refresh[token] = _Token(grant, scopes)
            self.issued.append(token)
            body["refresh_token"] = token
        return json_response(body, 200, NO_STORE)

    # -- revoke --------------------------------------------------------------------------------------------

    async def _revoke(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        presented = form.get("token") or request.query_params.get("token", "")
        with self._lock:
            record = self._access.get(presented) or self._refresh.get(presented)
            if record is None:
                return _token_error("invalid_token", "Token expired or revoked")
            for store in (self._access, self._refresh):
                for token in [t for t, r in store.items() if r.grant == record.grant]:
                    del store[token]
        return json_response({}, 200)
