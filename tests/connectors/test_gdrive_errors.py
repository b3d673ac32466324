"""Google's error answers (shared by Drive and Gmail) mapped to connector errors, from bodies as Google sends
them. Google's published specs declare only success answers, so prism cannot produce these: the sandbox
tests drive the same mapping end to end, and this table pins each status and reason."""

from typing import Any

import httplib2
import orjson
import pytest
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
from connectors.google_common import translate_http_error

DRIVE = "https://www.googleapis.com/auth/drive"


def _error(status: int, reason: str | None, message: str, *, details: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message}
    if reason:
        body["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    if details:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": details}]
    return {"error": body}


CASES: list[tuple[int, dict[str, Any] | bytes, type[ConnectorError], str]] = [
    (401, _error(401, "authError", "Invalid Credentials"), ProviderAuthExpired, "refused the access token"),
    (
        403,
        _error(
            403,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
            details="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        ),
        ProviderForbidden,
        "needs the scope https://www.googleapis.com/auth/drive",
    ),
    (  # the newer format carries only the ErrorInfo reason
        403,
        _error(403, None, "Request had insufficient authentication scopes.", details="ACCESS_TOKEN_SCOPE_INSUFFICIENT"),
        ProviderForbidden,
        "needs the scope",
    ),
    (403, _error(403, "userRateLimitExceeded", "User Rate Limit Exceeded"), ProviderRateLimited, "rate limit"),
    (403, _error(403, "rateLimitExceeded", "Rate Limit Exceeded"), ProviderRateLimited, "rate limit"),
    (429, _error(429, "rateLimitExceeded", "Rate Limit Exceeded"), ProviderRateLimited, "rate limit"),
    (429, b"", ProviderRateLimited, "rate limit"),
    (
        403,
        _error(403, "insufficientFilePermissions", "The user does not have sufficient permissions for file 1abc."),
        ProviderRejected,
        "does not have sufficient permissions for file 1abc",
    ),
    (
        403,
        _error(403, "fileNotDownloadable", "Only files with binary content can be downloaded."),
        ProviderRejected,
        "binary content",
    ),
    (404, _error(404, "notFound", "File not found: 1abc."), ProviderNotFound, "File not found: 1abc."),
    (400, _error(400, "invalid", "Invalid Value"), ProviderRejected, "Invalid Value"),
    (400, _error(400, "invalidArgument", "Recipient address required"), ProviderRejected, "Recipient address required"),
    (416, _error(416, "requestedRangeNotSatisfiable", "Request range not satisfiable"), ProviderRejected, "range"),
    (500, _error(500, "backendError", "Backend Error"), ProviderUnavailable, "answered 500"),
    (503, b"<html>Service Unavailable</html>", ProviderUnavailable, "answered 503"),
]


def _http_error(status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> HttpError:
    response = httplib2.Response({"status": str(status), **(headers or {})})
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return HttpError(response, content, uri="https://www.googleapis.com/drive/v3/files?alt=json")


@pytest.mark.parametrize(("status", "body", "expected", "message"), CASES)
def test_google_error_maps_to_connector_error(
    status: int, body: dict[str, Any] | bytes, expected: type[ConnectorError], message: str
) -> None:
    error = translate_http_error(_http_error(status, body), service="Google Drive", needs=DRIVE)
    assert type(error) is expected
    assert message in error.message
    assert error.message.startswith("Google Drive")
    if isinstance(error, ProviderForbidden):
        assert error.missing_scopes == (DRIVE,)


def test_retry_after_is_read_in_seconds_and_an_http_date_is_ignored() -> None:
    body = _error(429, "rateLimitExceeded", "Rate Limit Exceeded")
    seconds = translate_http_error(_http_error(429, body, {"retry-after": "12"}), service="Gmail", needs=DRIVE)
    assert isinstance(seconds, ProviderRateLimited) and seconds.retry_after == 12.0
    dated = _http_error(429, body, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    when = translate_http_error(dated, service="Gmail", needs=DRIVE)
    assert isinstance(when, ProviderRateLimited) and when.retry_after is None


def test_messages_are_capped_and_never_carry_the_request() -> None:
    long = _error(400, "invalid", "x" * 5000)
    error = translate_http_error(_http_error(400, long), service="Gmail", needs=DRIVE)
    assert len(error.message) < 400
    assert "alt=json" not in error.message
