"""A small, stateful, in-memory Google account: OAuth 2.0 at Google's paths plus the Drive v3 and Gmail v1 APIs.

One class serves both APIs, as one Google OAuth client does; the hub mounts one instance per provider
(`/sandbox/google_drive`, `/sandbox/gmail`), and tests serve one alone for both. Paths are Google's:
`/o/oauth2/v2/auth`, `/token`, `/revoke`, `/drive/v3/...`, `/upload/drive/v3/...`, `/gmail/v1/...`.

Test hooks live under `/_control/`: `POST expire-tokens`, `GET stats`, `POST reset-stats`,
`GET issued-tokens`, `POST revoke-all`, `GET drive-notifications` (share emails Drive would have sent) and
`POST throttle` (`{"count": N, "retry_after": S | null, "reason": "rateLimitExceeded" |
"userRateLimitExceeded"}`: the next N API calls get Google's 429, or its 403 for a per-user limit) and
`POST fault` (slow answers, 5xx, resets, malformed JSON: see `hub.sandbox._control`).
"""

import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response
from hub.sandbox._control import Controls, Throttle, decode_object, throttle_from
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


def _read_throttle(raw: bytes) -> Throttle:
    body = decode_object(raw)
    if body is None:
        raise GoogleError(400, "expected a JSON object", "parseError")
    throttle = throttle_from(body)
    if throttle is None:
        raise GoogleError(400, "count and retry_after must be integers", "invalid")
    reason = body.get("reason", "rateLimitExceeded")
    if reason not in _RATE_REASONS:
        raise GoogleError(400, f"reason must be one of {', '.join(_RATE_REASONS)}", "invalid")
    return Throttle(throttle.count, throttle.retry_after, reason)


def _throttled(throttle: Throttle) -> Response:
    # Google rarely sends Retry-After; the control endpoint may add one.
    headers = {"Retry-After": str(throttle.retry_after)} if throttle.retry_after is not None else None
    reason = throttle.reason
    message = "Rate Limit Exceeded" if reason == "rateLimitExceeded" else "User Rate Limit Exceeded"
    return error_response(GoogleError(_RATE_REASONS[reason], message, reason, domain="usageLimits", headers=headers))


def _failed(status: int, message: str) -> Response:
    return error_response(GoogleError(status, message, "invalid" if status < 500 else "backendError"))


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
        self._controls = Controls(
            lock=self._lock,
            stats=self.stats,
            tokens=self._oauth,
            is_api=lambda path: path.startswith(_API_PREFIXES),
            read_throttle=_read_throttle,
            throttled=_throttled,
            error=_failed,
        )
        self.app = Starlette(
            routes=[
                *self._oauth.routes(),
                *self.drive.routes(),
                *self.gmail.routes(),
                *self._controls.routes(),
                Route("/_control/drive-notifications", self._control_notifications, methods=["GET"]),
            ],
            middleware=[self._controls.middleware()],
            exception_handlers={GoogleError: _google_error_handler},
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 401."""
        self._oauth.expire_access_tokens()

    @property
    def issued_tokens(self) -> list[str]:
        return self._controls.issued_tokens()

    # -- test hooks ----------------------------------------------------------------------------------------

    async def _control_notifications(self, request: Request) -> Response:
        with self._lock:
            return json_response({"notifications": list(self.drive.notifications)})
