"""A small, stateful, in-memory Google account: OAuth 2.0 at Google's paths plus the Drive v3 and Gmail v1 APIs.

One class serves both APIs, as one Google OAuth client does; the hub mounts one instance per provider
(`/sandbox/google_drive`, `/sandbox/gmail`), and tests serve one alone for both. Paths are Google's:
`/o/oauth2/v2/auth`, `/token`, `/revoke`, `/drive/v3/...`, `/upload/drive/v3/...`, `/gmail/v1/...`.

Test hooks live under `/_control/`: `POST expire-tokens`, `GET stats`, `POST reset-stats`,
`GET issued-tokens`, `POST revoke-all`, `GET drive-notifications` (share emails Drive would have sent) and
`POST throttle` (`{"count": N, "retry_after": S | null, "reason": "rateLimitExceeded" |
"userRateLimitExceeded"}`: the next N API calls get Google's 429, or its 403 for a per-user limit).
"""

import threading
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.sandbox._common import SandboxStats, json_response, route_path
from hub.sandbox._google_api import GoogleError, error_response
from hub.sandbox._google_drive import DriveApi
from hub.sandbox._google_gmail import GmailApi
from hub.sandbox._google_oauth import GoogleOAuthServer

__all__ = ["ACCOUNT", "GoogleSandbox"]

ACCOUNT = "ada.lovelace@example.com"
_DISPLAY_NAME = "Ada Lovelace"
_API_PREFIXES = ("/drive/", "/upload/", "/gmail/")
_RATE_REASONS = {"rateLimitExceeded": 429, "userRateLimitExceeded": 403}


async def _google_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GoogleError)
    return error_response(exc)


class _Gate:
    """Pure ASGI middleware: counts and logs requests and serves the throttle, before any routing."""

    def __init__(self, app: ASGIApp, sandbox: "GoogleSandbox") -> None:
        self.app, self.sandbox = app, sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if not path.startswith("/_control/"):
                throttled = self.sandbox._note(scope["method"], path)
                if throttled is not None:
                    await throttled(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class GoogleSandbox:
    """One Google account (Drive and Gmail) with one registered OAuth client (`client_id`/`client_secret`)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int = 3599,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self.stats = SandboxStats()
        self._oauth = GoogleOAuthServer(
            client_id=client_id,
            client_secret=client_secret,
            access_token_ttl=access_token_ttl,
            rotate_refresh_tokens=rotate_refresh_tokens,
            lock=self._lock,
            stats=self.stats,
            account=ACCOUNT,
        )
        self.drive = DriveApi(
            lock=self._lock, authenticate=self._oauth.authenticate, account=ACCOUNT, display_name=_DISPLAY_NAME
        )
        self.gmail = GmailApi(
            lock=self._lock, authenticate=self._oauth.authenticate, account=ACCOUNT, display_name=_DISPLAY_NAME
        )
        self._throttle_count = 0
        self._throttle_retry_after: int | None = None
        self._throttle_reason = "rateLimitExceeded"
        self.app = Starlette(
            routes=[
                *self._oauth.routes(),
                *self.drive.routes(),
                *self.gmail.routes(),
                Route("/_control/expire-tokens", self._control_expire, methods=["POST"]),
                Route("/_control/stats", self._control_stats, methods=["GET"]),
                Route("/_control/reset-stats", self._control_reset, methods=["POST"]),
                Route("/_control/issued-tokens", self._control_issued, methods=["GET"]),
                Route("/_control/revoke-all", self._control_revoke, methods=["POST"]),
                Route("/_control/throttle", self._control_throttle, methods=["POST"]),
                Route("/_control/drive-notifications", self._control_notifications, methods=["GET"]),
            ],
            middleware=[Middleware(_Gate, sandbox=self)],
            exception_handlers={GoogleError: _google_error_handler},
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 401."""
        self._oauth.expire_access_tokens()

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._oauth.issued)

    # -- per request -------------------------------------------------------------------------------------

    def _note(self, method: str, path: str) -> Response | None:
        """Record a request; a throttled API call gets its rate-limit answer here."""
        with self._lock:
            self.stats.log(method, path)
            if not path.startswith(_API_PREFIXES):
                return None
            self.stats.api_requests += 1
            if self._throttle_count <= 0:
                return None
            self._throttle_count -= 1
            retry_after, reason = self._throttle_retry_after, self._throttle_reason
        # Google rarely sends Retry-After; the control endpoint may add one.
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        message = "Rate Limit Exceeded" if reason == "rateLimitExceeded" else "User Rate Limit Exceeded"
        return error_response(
            GoogleError(_RATE_REASONS[reason], message, reason, domain="usageLimits", headers=headers)
        )

    # -- test hooks ----------------------------------------------------------------------------------------

    async def _control_expire(self, request: Request) -> Response:
        self.expire_access_tokens()
        return Response(status_code=204)

    async def _control_stats(self, request: Request) -> Response:
        with self._lock:
            return json_response(self.stats.snapshot())

    async def _control_issued(self, request: Request) -> Response:
        return json_response({"tokens": self.issued_tokens})

    async def _control_reset(self, request: Request) -> Response:
        with self._lock:
            self.stats.reset()
        return Response(status_code=204)

    async def _control_revoke(self, request: Request) -> Response:
        self._oauth.revoke_all()
        return Response(status_code=204)

    async def _control_notifications(self, request: Request) -> Response:
        with self._lock:
            return json_response({"notifications": list(self.drive.notifications)})

    async def _control_throttle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise GoogleError(400, "expected a JSON object", "parseError")
        count, retry_after = body.get("count", 1), body.get("retry_after")
        reason = body.get("reason", "rateLimitExceeded")
        if not isinstance(count, int) or not (retry_after is None or isinstance(retry_after, int)):
            raise GoogleError(400, "count and retry_after must be integers", "invalid")
        if reason not in _RATE_REASONS:
            raise GoogleError(400, f"reason must be one of {', '.join(_RATE_REASONS)}", "invalid")
        with self._lock:
            self._throttle_count, self._throttle_retry_after, self._throttle_reason = count, retry_after, reason
        return Response(status_code=204)
