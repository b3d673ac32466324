"""HubSpot's OAuth 2.0 endpoints, emulated: consent page, authorization codes (PKCE S256), token endpoint.

Real HubSpot answers token errors with its own `status`/`message`/`correlationId` body; we add the RFC 6749
`error`/`error_description` pair as well so that generic OAuth clients (authlib) can classify the failure.
"""

import html
import secrets
import threading
import time
import uuid
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

__all__ = ["CODE_TTL", "OAuthServer"]

CODE_TTL = 600.0  # HubSpot authorization codes live ten minutes
_clock: Callable[[], float] = time.monotonic  # tests move time forward by replacing this
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#213343}"
    "button{font:inherit;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:4px;cursor:pointer}"
    "button[value=approve]{background:#ff7a59;color:#fff;border:1px solid #ff7a59}"
    "button:focus-visible{outline:3px solid #0091ae;outline-offset:2px}"
)
_AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "optional_scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    challenge: str | None
    expires_at: float


@dataclass(slots=True)
class _AccessToken:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass(slots=True)
class _RefreshToken:
    client_id: str
    scopes: frozenset[str]


def _token_error(status: str, error: str, message: str) -> Response:
    body = {
        "status": status,
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "error": error,
        "error_description": message,
    }
    return json_response(body, 400, {"Cache-Control": "no-store"})


def _error_page(message: str) -> HTMLResponse:
    body = f'<p role="alert">{html.escape(message)}</p>'
    return consent_page("Invalid authorization request", body, style=_STYLE, status_code=400)


def _describe(scope: str) -> str:
    parts = scope.split(".")
    if len(parts) == 4 and parts[:2] == ["crm", "objects"]:
        verb = "View" if parts[3] == "read" else "Create, update and delete" if parts[3] == "write" else None
        if verb:
            return f"{verb} your {parts[2]}"
    return scope


class OAuthServer:
    """Authorization codes and tokens for one registered app; all state guarded by the sandbox's lock."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int,
        rotate_refresh_tokens: bool,
        lock: threading.Lock,
        stats: SandboxStats,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._ttl = access_token_ttl
        self._rotate = rotate_refresh_tokens
        self._lock = lock
        self._stats = stats
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        # Every token ever minted, so tests can scan the hub's storage and logs for any of them.
        self.issued: list[str] = []

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self._authorize_page, methods=["GET"]),
            Route("/oauth/authorize", self._authorize_decision, methods=["POST"]),
            Route("/oauth/v1/token", self._token, methods=["POST"]),
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
        with self._lock:
            self._refresh.clear()

    # -- authorize -----------------------------------------------------------------------------------------

    def _check_request(self, params: Mapping[str, str]) -> str | None:
        if not same(params.get("client_id", ""), self._client_id):
            return "Unknown client_id: no app is registered with this id."
        if not absolute_http_url(params.get("redirect_uri", "")):
            return "redirect_uri is missing or is not an absolute http(s) URL."
        # Strict on purpose: a server that defaulted to `plain` would reject an S256 verifier later.
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256 when a code_challenge is given."
        return None

    async def _authorize_page(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in _AUTHORIZE_FIELDS}
        if (problem := self._check_request(params)) is not None:
            return _error_page(problem)
        scopes = params.get("scope", "").split() + params.get("optional_scope", "").split()
        items = (
            "".join(f"<li>{html.escape(_describe(s))} (<code>{html.escape(s)}</code>)</li>" for s in scopes)
            or "<li>No scopes requested</li>"
        )
        host = urlsplit(params["redirect_uri"]).netloc
        body = (
            f"<p>The app <strong>{html.escape(params['client_id'])}</strong> wants to access your "
            f"HubSpot sandbox account. It will be able to:</p>"
            f'<ul aria-label="Requested permissions">{items}</ul>'
            f"<p>You will then be sent back to <strong>{html.escape(host)}</strong>.</p>"
            f"{consent_form(request, params, 'Connect')}"
        )
        return consent_page("Connect to HubSpot (sandbox)", body, style=_STYLE)

    async def _authorize_decision(self, request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if k in _AUTHORIZE_FIELDS and isinstance(v, str)}
        # The hidden fields come back from the browser: validate them again rather than trust the page.
        if (problem := self._check_request(params)) is not None:
            return _error_page(problem)
        decision = form.get("decision")
        state = params.get("state", "")
        if decision == "deny":
            return RedirectResponse(
                with_query(
                    params["redirect_uri"],
                    {
                        "error": "access_denied",
                        "error_description": "The user denied the request.",
                        "state": state,
                    },
                ),
                302,
            )
        if decision != "approve":
            return _error_page("decision must be approve or deny.")
        code = secrets.token_urlsafe(24)
        scopes = frozenset(params.get("scope", "").split() + params.get("optional_scope", "").split())
        with self._lock:
            self._codes[code] = _Code(
                self._client_id,
                params["redirect_uri"],
                scopes,
                params.get("code_challenge") or None,
                _clock() + CODE_TTL,
            )
        return RedirectResponse(with_query(params["redirect_uri"], {"code": code, "state": state}), 302)

    # -- token ---------------------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        grant_type = form.get("grant_type", "")
        with self._lock:
            self._stats.count_token_request(grant_type)
        client_id, client_secret = basic_or_form_client(request, form)
        if not (same(client_id, self._client_id) and same(client_secret, self._client_secret)):
            return _token_error("BAD_CLIENT_ID", "invalid_client", "missing or invalid client_id or secret")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return _token_error(
            "BAD_GRANT_TYPE",
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )

    def _exchange_code(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            # Popped on first presentation, even if the rest fails: a code can never be tried twice.
            code = self._codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= _clock() or code.client_id != self._client_id:
                return _token_error("BAD_AUTH_CODE", "invalid_grant", "missing or unknown auth code")
            if form.get("redirect_uri") != code.redirect_uri:
                return _token_error(
                    "BAD_REDIRECT_URI",
                    "invalid_grant",
                    "redirect_uri does not match the one the code was issued for",
                )
            if code.challenge is not None:
                verifier = form.get("code_verifier", "")
                if not verifier or not same(s256(verifier), code.challenge):
                    return _token_error(
                        "BAD_AUTH_CODE", "invalid_grant", "code_verifier does not match the code_challenge"
                    )
            return self._issue(code.scopes, refresh_token=None)

    def _refresh_grant(self, form: Mapping[str, str]) -> Response:
        presented = form.get("refresh_token", "")
        with self._lock:
            record = self._refresh.get(presented)
            if record is None or record.client_id != self._client_id:
                return _token_error("BAD_REFRESH_TOKEN", "invalid_grant", "missing or unknown refresh token")
            if self._rotate:
                del self._refresh[presented]  # rotation: the old refresh token dies with this use
            return self._issue(record.scopes, refresh_token=None if self._rotate else presented)

    def _issue(self, scopes: frozenset[str], *, refresh_token: str | None) -> Response:
        """Mint tokens; called with the lock held so a concurrent revoke-all cannot be undone."""
        access = secrets.token_urlsafe(32)
        refresh = refresh_token or secrets.token_urlsafe(32)
        self._access[access] = _AccessToken(self._client_id, scopes, _clock() + self._ttl)
        self._refresh[refresh] = _RefreshToken(self._client_id, scopes)
        self.issued += [access] if refresh_token else [access, refresh]
        body = {
            "token_type": "bearer",
            "refresh_token": refresh,
            "access_token": access,
            "expires_in": self._ttl,
        }
        return json_response(body, 200, NO_STORE)
