"""The hub's errors, each a problem+json answer (RFC 9457) with a stable `type` slug.

    SwitchboardError
     ├── Unauthenticated            401 unauthenticated
     ├── ScopeDenied                403 scope_denied
     ├── ConstraintViolated         403 constraint_violated
     ├── FlowBlocked                403 flow_blocked
     ├── ApprovalDenied             403 approval_denied
     ├── Forbidden                  403 forbidden          (admin-only actions, CSRF)
     ├── UnknownTool                404 unknown_tool
     ├── NotFound                   404 not_found
     ├── BadRequest                 400 bad_request        (malformed JSON, bad OAuth callback)
     ├── PayloadTooLarge            413 payload_too_large  (a request body over the hub's limit)
     ├── InvalidArguments           422 invalid_arguments
     ├── Conflict                   409 conflict
     │    └── ConnectionNeedsReauth 409 connection_needs_reauth
     ├── RateLimited                429 rate_limited       (Retry-After)
     ├── UpstreamError              502 upstream_error
     ├── UpstreamTimeout            504 upstream_timeout
     └── ServiceUnavailable         503 service_unavailable (Retry-After)
          └── DatabaseUnavailable   503 service_unavailable (the database cannot be reached)

`detail` is written for the caller (an agent or an admin) and never holds a secret; `log_detail` may say
more, for the hub's log only.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "ApprovalDenied",
    "BadRequest",
    "Conflict",
    "ConnectionNeedsReauth",
    "ConstraintViolated",
    "DatabaseUnavailable",
    "FlowBlocked",
    "Forbidden",
    "InvalidArguments",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ScopeDenied",
    "ServiceUnavailable",
    "SwitchboardError",
    "Unauthenticated",
    "UnknownTool",
    "UpstreamError",
    "UpstreamTimeout",
]


class SwitchboardError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, log_detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.log_detail = log_detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        return {}

    def problem(self) -> dict[str, Any]:
        return {
            "type": self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class Unauthenticated(SwitchboardError):
    code, status, title = "unauthenticated", 401, "Not authenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="switchboard"'}


class ScopeDenied(SwitchboardError):
    code, status, title = "scope_denied", 403, "Scope not granted"


class ConstraintViolated(SwitchboardError):
    code, status, title = "constraint_violated", 403, "Constraint violated"


class FlowBlocked(SwitchboardError):
    code, status, title = "flow_blocked", 403, "Data flow blocked"


class ApprovalDenied(SwitchboardError):
    code, status, title = "approval_denied", 403, "Approval denied"


class Forbidden(SwitchboardError):
    code, status, title = "forbidden", 403, "Forbidden"


class UnknownTool(SwitchboardError):
    code, status, title = "unknown_tool", 404, "Unknown tool"


class NotFound(SwitchboardError):
    code, status, title = "not_found", 404, "Not found"


class BadRequest(SwitchboardError):
    code, status, title = "bad_request", 400, "Bad request"


class PayloadTooLarge(SwitchboardError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class InvalidArguments(SwitchboardError):
    code, status, title = "invalid_arguments", 422, "Invalid arguments"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] = (), **extra: Any) -> None:
        super().__init__(detail, errors=list(errors), **extra)


class Conflict(SwitchboardError):
    code, status, title = "conflict", 409, "Conflict"


class ConnectionNeedsReauth(Conflict):
    code, title = "connection_needs_reauth", "Connection needs re-authorisation"


class RateLimited(SwitchboardError):
    code, status, title = "rate_limited", 429, "Rate limited"

    def __init__(self, detail: str, *, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))} if self.retry_after else {}


class UpstreamError(SwitchboardError):
    code, status, title = "upstream_error", 502, "Provider error"


class UpstreamTimeout(SwitchboardError):
    code, status, title = "upstream_timeout", 504, "Provider timed out"


class ServiceUnavailable(SwitchboardError):
    """The hub cannot serve this now but will soon by itself: the caller should retry, not give up."""

    code, status, title = "service_unavailable", 503, "Service unavailable"

    def __init__(self, detail: str, *, retry_after: float = 2.0, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class DatabaseUnavailable(ServiceUnavailable):
    """The database refused or dropped the connection (down, restarting, unreachable, out of connections).

    Raised instead of the driver's error so that every path answers 503 and none a 500; the driver's
    message, which names the database's host and port, stays in the hub's log (hub.db reports outages)."""

    def __init__(self, detail: str = "the database is unavailable; try again shortly", **extra: Any) -> None:
        super().__init__(detail, **extra)
