"""Google API errors (`googleapiclient.errors.HttpError`) mapped to connector errors.

Google answers `{"error": {"code", "message", "status", "errors": [{"reason", "domain", ...}],
"details": [{"@type": ".../google.rpc.ErrorInfo", "reason": ...}]}}`. The status alone is not enough: 403
means a missing OAuth scope (`insufficientPermissions`, `ACCESS_TOKEN_SCOPE_INSUFFICIENT`), a rate limit
(`rateLimitExceeded`, `userRateLimitExceeded`), or a refusal about this one object (no access to the file,
the file cannot be downloaded, ...). Only the first names a scope to reconnect with; the last is the
request's fault, so it is ProviderRejected with Google's message.
"""

from typing import Any

import orjson
from googleapiclient.errors import HttpError

from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)

__all__ = ["translate_http_error"]

_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
_MAX_MESSAGE = 300


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        decoded = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        return {}
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else {}


def _reasons(error: dict[str, Any]) -> set[str]:
    found = set()
    for key in ("errors", "details"):
        items = error.get(key)
        if isinstance(items, list):
            found |= {str(item["reason"]) for item in items if isinstance(item, dict) and item.get("reason")}
    return found


def _retry_after(resp: Any) -> float | None:
    raw = resp.get("retry-after") if hasattr(resp, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: let the hub back off on its own


def translate_http_error(exc: HttpError, *, service: str, needs: str) -> ConnectorError:
    """The connector error for one HttpError; `needs` is the provider scope the refused call requires."""
    status = int(exc.resp.status)
    error = _error_body(exc.content)
    reasons = _reasons(error)
    message = error.get("message")
    detail = message.strip()[:_MAX_MESSAGE] if isinstance(message, str) else ""
    said = f": {detail}" if detail else ""
    if status == 401:
        return ProviderAuthExpired(f"{service} refused the access token")
    if status == 429 or (status == 403 and reasons & _RATE_REASONS):
        return ProviderRateLimited(f"{service} rate limit reached", _retry_after(exc.resp))
    if status == 403 and reasons & _SCOPE_REASONS:
        return ProviderForbidden(f"{service} refused the call: it needs the scope {needs}", (needs,))
    if status == 404:
        return ProviderNotFound(f"{service} has no such object{said}")
    if status in (400, 403, 409, 412, 413, 416, 422):
        return ProviderRejected(f"{service} rejected the request{said}")
    return ProviderUnavailable(f"{service} answered {status}")
