"""Stripe Connect OAuth for one platform, and the keys that authenticate API calls.

    GET  /oauth/authorize   consent page (response_type=code, client_id, scope=read_only|read_write,
                            redirect_uri, state); POSTing its own parameters back with decision=approve
                            redirects to redirect_uri?code=ac_…&scope=…&state=…
    POST /oauth/token       grant_type=authorization_code|refresh_token, authenticated with the platform's
                            secret key as client_secret (or HTTP Basic); answers access_token (a secret key
                            for the connected account, no expiry), refresh_token, scope, stripe_user_id

API calls carry `Authorization: Bearer <key>` (or Basic with the key as user name). A key is a Connect
access token (scope read_only or read_write), an account secret key, or a restricted key holding a set of
`rak_<resource>_<read|write>` permissions; tests mint the last two through the sandbox's control API.
"""

import base64
import html
import secrets
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response
from hub.sandbox._oauth_common import NO_STORE, absolute_http_url, consent_form, consent_page, same, with_query

__all__ = ["CODE_TTL", "ConnectOAuth", "Principal", "mask"]

CODE_TTL = 300.0
SCOPES = ("read_only", "read_write")
_clock: Callable[[], float] = time.monotonic  # tests move time forward by replacing this
_ALNUM = string.ascii_letters + string.digits
_FIELDS = ("response_type", "client_id", "scope", "redirect_uri", "state", "stripe_landing", "always_prompt")
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#30313d}"
    "button{font:inherit;padding:.5rem 1.25rem;margin-right:.5rem;border-radius:6px;cursor:pointer}"
    "button[value=approve]{background:#635bff;color:#fff;border:1px solid #635bff}"
    "button:focus-visible{outline:3px solid #0055de;outline-offset:2px}"
)
_DESCRIBE = {
    "read_only": "View your Stripe data: customers, payments, refunds, invoices and balance",
    "read_write": "View and change your Stripe data: create customers, refunds, invoices and payment links",
}


def _token(prefix: str, length: int = 32) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def mask(key: str) -> str:
    """A key as Stripe prints it in errors: its kind, then only the last four characters."""
    head = key[:8] if key[:3] in ("sk_", "rk_", "pk_") else ""
    return f"{head}{'*' * 20}{key[-4:]}"


@dataclass(slots=True)
class Principal:
    """Who an API key speaks for, and what it may do."""

    key: str
    kind: Literal["oauth", "secret", "restricted"]
    scope: str = "read_write"  # Connect tokens: read_only or read_write
    permissions: frozenset[str] = frozenset()  # restricted keys
    expires_at: float | None = None

    def missing(self, resource: str, *, write: bool) -> str | None:
        """The permission or scope this key lacks for `resource` (None when it may)."""
        if self.kind == "secret":
            return None
        if self.kind == "oauth":
            return "read_write" if write and self.scope != "read_write" else None
        wanted = f"rak_{resource}_{'write' if write else 'read'}"
        # A write permission includes reading, as in the dashboard's "Write" column.
        held = self.permissions | {p.removesuffix("_write") + "_read" for p in self.permissions}
        return None if wanted in held else wanted


@dataclass(slots=True)
class _Code:
    scope: str
    redirect_uri: str
    expires_at: float


@dataclass(slots=True)
class _Refresh:
    scope: str


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status, {"Cache-Control": "no-store"})


def _error_page(message: str) -> HTMLResponse:
    body = f'<p role="alert">{html.escape(message)}</p>'
    return consent_page("Invalid authorization request", body, style=_STYLE, status_code=400)


class ConnectOAuth:
    """Codes, tokens and keys of one platform (`client_id`, secret key `client_secret`) and one account."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        account: str,
        access_token_ttl: int,
        rotate_refresh_tokens: bool,
        lock: threading.Lock,
        stats: SandboxStats,
    ) -> None:
        self._client_id, self._client_secret, self._account = client_id, client_secret, account
        self._ttl, self._rotate = access_token_ttl, rotate_refresh_tokens
        self._lock, self._stats = lock, stats
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._keys: dict[str, Principal] = {}
        self.issued: list[str] = []  # every token and key minted, so tests can look for leaks

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self._authorize_page, methods=["GET"]),
            Route("/oauth/authorize", self._authorize_decision, methods=["POST"]),
            Route("/oauth/token", self._token, methods=["POST"]),
        ]

    # -- keys ----------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal | Literal["missing", "invalid", "expired"]:
        scheme, _, credential = (authorization or "").partition(" ")
        credential = credential.strip()
        if scheme.lower() == "basic":
            try:
                credential = unquote(base64.b64decode(credential, validate=True).decode().partition(":")[0])
            except ValueError:
                return "invalid"
        elif scheme.lower() != "bearer":
            return "missing"
        if not credential:
            return "missing"
        principal = self._keys.get(credential)  # dict read: atomic under the GIL
        if principal is None:
            return "invalid"
        if principal.expires_at is not None and principal.expires_at <= _clock():
            return "expired"
        return principal

    def mint_key(self, permissions: list[str] | None) -> str:
        """A secret key for the account (`permissions` None) or a restricted key holding `permissions`."""
        if permissions is None:
            key, principal = _token("sk_test_"), Principal(key="", kind="secret")
        else:
            key, principal = (
                _token("rk_test_"),
                Principal(key="", kind="restricted", permissions=frozenset(permissions)),
            )
        principal.key = key
        with self._lock:
            self._keys[key] = principal
            self.issued.append(key)
        return key

    def expire_access_tokens(self) -> None:
        """Every Connect access token issued so far now answers 401 (as if the user disconnected it)."""
        with self._lock:
            past = _clock() - 1
            for principal in self._keys.values():
                if principal.kind == "oauth":
                    principal.expires_at = past

    def revoke_all(self) -> None:
        with self._lock:
            self._refresh.clear()

    # -- authorize -----------------------------------------------------------------------------------------

    def _check(self, params: Mapping[str, str]) -> str | None:
        if not same(params.get("client_id", ""), self._client_id):
            return "No application matches the supplied client identifier."
        if not absolute_http_url(params.get("redirect_uri", "")):
            return "redirect_uri is missing or is not an absolute http(s) URL."
        if params.get("response_type") != "code":
            return "response_type must be code."
        if params.get("scope", "read_only") not in SCOPES:
            return f"Invalid scope: {params.get('scope', '')[:50]!r}; use read_only or read_write."
        return None

    async def _authorize_page(self, request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in _FIELDS}
        if (problem := self._check(params)) is not None:
            return _error_page(problem)
        scope, host = params.get("scope", "read_only"), urlsplit(params["redirect_uri"]).netloc
        body = (
            f"<p>The platform <strong>{html.escape(params['client_id'])}</strong> wants to connect to your "
            f"Stripe sandbox account <code>{self._account}</code>. It will be able to:</p>"
            f'<ul aria-label="Requested permissions"><li>{html.escape(_DESCRIBE[scope])} '
            f"(<code>{scope}</code>)</li></ul>"
            f"<p>You will then be sent back to <strong>{html.escape(host)}</strong>.</p>"
            f"{consent_form(request, params, 'Connect')}"
        )
        return consent_page("Connect your Stripe account (sandbox)", body, style=_STYLE)

    async def _authorize_decision(self, request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if k in _FIELDS and isinstance(v, str)}
        if (problem := self._check(params)) is not None:
            return _error_page(problem)
        decision, state = form.get("decision"), params.get("state", "")
        if decision == "deny":
            denied = {"error": "access_denied", "error_description": "The user denied your request", "state": state}
            return RedirectResponse(with_query(params["redirect_uri"], denied), 302)
        if decision != "approve":
            return _error_page("decision must be approve or deny.")
        code, scope = _token("ac_", 24), params.get("scope", "read_only")
        with self._lock:
            self._codes[code] = _Code(scope, params["redirect_uri"], _clock() + CODE_TTL)
        return RedirectResponse(with_query(params["redirect_uri"], {"code": code, "scope": scope, "state": state}), 302)

    # -- token ---------------------------------------------------------------------------------------------

    def _client_secret_of(self, request: Request, form: Mapping[str, str]) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credential.strip(), validate=True).decode().partition(":")
            except ValueError:
                return ""
            # `-u sk_…:` (the key as user name), or client_id:client_secret.
            return unquote(password) if unquote(user) == self._client_id else unquote(user)
        if scheme.lower() == "bearer":
            return credential.strip()
        return form.get("client_secret", "")

    async def _token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        grant_type = form.get("grant_type", "")
        with self._lock:
            self._stats.count_token_request(grant_type)
        secret = self._client_secret_of(request, form)
        if not same(secret, self._client_secret) or form.get("client_id", self._client_id) != self._client_id:
            return _oauth_error("invalid_client", "No such API key or client: check client_secret and client_id", 401)
        if grant_type == "authorization_code":
            with self._lock:
                code = self._codes.pop(form.get("code", ""), None)  # spent on first presentation
                if code is None or code.expires_at <= _clock():
                    return _oauth_error("invalid_grant", "Authorization code does not exist or has expired")
                if form.get("redirect_uri", code.redirect_uri) != code.redirect_uri:
                    return _oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
                return self._issue(code.scope, refresh_token=None)
        if grant_type == "refresh_token":
            presented = form.get("refresh_token", "")
            with self._lock:
                record = self._refresh.get(presented)
                if record is None:
                    return _oauth_error("invalid_grant", "Refresh token does not exist or was revoked")
                scope = form.get("scope") or record.scope
                if scope not in SCOPES or (record.scope == "read_only" and scope == "read_write"):
                    return _oauth_error("invalid_scope", "A refresh can keep or narrow the scope, never widen it")
                if self._rotate:
                    del self._refresh[presented]
                return self._issue(scope, refresh_token=None if self._rotate else presented)
        if not grant_type:
            return _oauth_error("invalid_request", "No grant type specified")
        return _oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant_type[:50]}")

    def _issue(self, scope: str, *, refresh_token: str | None) -> Response:
        """Mint a Connect token; the caller holds the lock."""
        access = _token("sk_test_", 40)
        refresh = refresh_token or _token("rt_", 40)
        expires = _clock() + self._ttl if self._ttl > 0 else None
        self._keys[access] = Principal(key=access, kind="oauth", scope=scope, expires_at=expires)
        self._refresh[refresh] = _Refresh(scope)
        self.issued += [access] if refresh_token else [access, refresh]
        body = {
            "access_token": access,
            "livemode": False,
            "refresh_token": refresh,
            "token_type": "bearer",
            "stripe_publishable_key": _token("pk_test_", 40),
            "stripe_user_id": self._account,
            "scope": scope,
        }
        return json_response(body, 200, NO_STORE)
