"""What the sandbox's Google APIs share: Google's error format, bearer-token and scope checks, partial
responses (`fields=`), and the accepted scopes of each method, as the discovery documents list them.

Errors look like Google's: `{"error": {"code", "message", "errors": [{"message", "domain", "reason", ...}],
"status"}}`; a token without a scope the method accepts gets 403 `insufficientPermissions` with an ErrorInfo
`ACCESS_TOKEN_SCOPE_INSUFFICIENT` and a `WWW-Authenticate` header listing the scopes that would do.
"""

from collections.abc import Mapping
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from hub.sandbox._common import json_response

__all__ = [
    "METHOD_SCOPES",
    "GoogleError",
    "authorize",
    "bool_param",
    "error_response",
    "int_param",
    "select_fields",
]

_AUTH = "https://www.googleapis.com/auth/"
_DRIVE_READ = frozenset(
    _AUTH + s
    for s in (
        "drive",
        "drive.appdata",
        "drive.file",
        "drive.meet.readonly",
        "drive.metadata",
        "drive.metadata.readonly",
        "drive.photos.readonly",
        "drive.readonly",
    )
)
# Which scopes each method accepts, copied from the discovery documents (a test keeps them in step).
METHOD_SCOPES: Mapping[str, frozenset[str]] = {
    "drive.files.list": _DRIVE_READ,
    "drive.files.get": _DRIVE_READ,
    "drive.files.export": frozenset(
        _AUTH + s for s in ("drive", "drive.file", "drive.meet.readonly", "drive.readonly")
    ),
    "drive.files.create": frozenset(_AUTH + s for s in ("drive", "drive.appdata", "drive.file")),
    "drive.files.update": frozenset(
        _AUTH + s for s in ("drive", "drive.appdata", "drive.file", "drive.metadata", "drive.scripts")
    ),
    "drive.permissions.create": frozenset(_AUTH + s for s in ("drive", "drive.file")),
    "gmail.users.messages.list": frozenset(
        ["https://mail.google.com/", *(_AUTH + s for s in ("gmail.metadata", "gmail.modify", "gmail.readonly"))]
    ),
    "gmail.users.messages.get": frozenset(
        [
            "https://mail.google.com/",
            *(
                _AUTH + s
                for s in (
                    "gmail.addons.current.message.action",
                    "gmail.addons.current.message.metadata",
                    "gmail.addons.current.message.readonly",
                    "gmail.metadata",
                    "gmail.modify",
                    "gmail.readonly",
                )
            ),
        ]
    ),
    "gmail.users.messages.attachments.get": frozenset(
        [
            "https://mail.google.com/",
            *(
                _AUTH + s
                for s in (
                    "gmail.addons.current.message.action",
                    "gmail.addons.current.message.readonly",
                    "gmail.modify",
                    "gmail.readonly",
                )
            ),
        ]
    ),
    "gmail.users.messages.send": frozenset(
        [
            "https://mail.google.com/",
            *(
                _AUTH + s
                for s in ("gmail.addons.current.action.compose", "gmail.compose", "gmail.modify", "gmail.send")
            ),
        ]
    ),
    "gmail.users.drafts.create": frozenset(
        [
            "https://mail.google.com/",
            *(_AUTH + s for s in ("gmail.addons.current.action.compose", "gmail.compose", "gmail.modify")),
        ]
    ),
    "gmail.users.labels.list": frozenset(
        [
            "https://mail.google.com/",
            *(_AUTH + s for s in ("gmail.labels", "gmail.metadata", "gmail.modify", "gmail.readonly")),
        ]
    ),
}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REALM = 'Bearer realm="https://accounts.google.com/"'
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


class GoogleError(Exception):
    """An error answer in Google's format; `location` names the offending parameter, as Google does."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        location: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.domain = code, message, reason, domain
        self.location, self.details, self.headers = location, details, headers or {}


def error_response(exc: GoogleError) -> Response:
    item: dict[str, Any] = {"message": exc.message, "domain": exc.domain, "reason": exc.reason}
    if exc.location:
        item |= {"location": exc.location, "locationType": "parameter"}
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "errors": [item]}
    if exc.code in _STATUS:
        body["status"] = _STATUS[exc.code]
    if exc.details:
        body["details"] = exc.details
    return json_response({"error": body}, exc.code, exc.headers)


def _error_info(reason: str, service: str, method: str) -> list[dict[str, Any]]:
    return [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": f"{service}.googleapis.com", "method": method},
        }
    ]


def authorize(scopes: frozenset[str] | Literal["missing", "expired"], method: str, *, service: str) -> frozenset[str]:
    """Check a request's token (already looked up: its scopes, or why it has none) against `method`'s
    accepted scopes, in Google's order: 401 before 403. Returns the token's scopes."""
    if scopes == "missing" or scopes == "expired":
        reason = "ACCESS_TOKEN_EXPIRED" if scopes == "expired" else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        raise GoogleError(
            401,
            _UNAUTHENTICATED,
            "authError",
            location="Authorization",
            details=_error_info(reason, service, method),
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
        )
    accepted = METHOD_SCOPES[method]
    if not scopes & accepted:
        raise GoogleError(
            403,
            "Request had insufficient authentication scopes.",
            "insufficientPermissions",
            details=_error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", service, method),
            headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope", scope="{" ".join(sorted(accepted))}"'},
        )
    return scopes


# -- partial responses -----------------------------------------------------------------------------------

_Selection = dict[str, "_Selection | None"]


def _parse_fields(spec: str) -> _Selection:
    """`a,b/c,d(e,f/g)` → {"a": None, "b": {"c": None}, "d": {"e": None, "f": {"g": None}}}."""
    pos = 0

    def parse_list(depth: int) -> _Selection:
        nonlocal pos
        selection: _Selection = {}
        while True:
            start = pos
            while pos < len(spec) and spec[pos] not in ",()":
                pos += 1
            path = [p.strip() for p in spec[start:pos].split("/")]
            if not all(path):
                raise ValueError(spec)
            sub: _Selection | None = None
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                sub = parse_list(depth + 1)
                if pos >= len(spec) or spec[pos] != ")":
                    raise ValueError(spec)
                pos += 1
            node = selection
            for name in path[:-1]:
                existing = node.get(name)
                node[name] = existing if isinstance(existing, dict) else {}
                node = node[name]  # type: ignore[assignment]
            node[path[-1]] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            if depth == 0 and pos < len(spec):
                raise ValueError(spec)
            return selection

    return parse_list(0)


def _apply(value: Any, selection: _Selection | None) -> Any:
    if selection is None or "*" in selection:
        return value
    if isinstance(value, list):
        return [_apply(v, selection) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _apply(value[k], sub) for k, sub in selection.items() if k in value}


def select_fields(
    body: dict[str, Any], fields: str | None, *, default: str, known: Mapping[str, frozenset[str]]
) -> dict[str, Any]:
    """Google's partial response: only the fields asked for (`default` when none are). `known` maps each
    top-level field, and `""` the resource itself, to the field names that exist, so a misspelt field is a
    400 like Google's instead of a silent omission."""
    try:
        selection = _parse_fields(fields or default)
    except ValueError:
        raise GoogleError(400, f"Invalid field selection {fields}", "invalidParameter", location="fields") from None
    for name, sub in selection.items():
        if name != "*" and name not in known.get("", frozenset()):
            raise GoogleError(400, f"Invalid field selection {name}", "invalidParameter", location="fields")
        if isinstance(sub, dict) and name in known:
            for inner in sub:
                if inner != "*" and inner not in known[name]:
                    raise GoogleError(400, f"Invalid field selection {inner}", "invalidParameter", location="fields")
    result = _apply(body, selection)
    assert isinstance(result, dict)
    return result


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise GoogleError(400, f"Invalid value for boolean parameter {name}: {raw}", "invalidParameter", location=name)
    return raw.lower() == "true"


def int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise GoogleError(
            400,
            f"Invalid value '{raw}'. Values must match the following regular expression: '-?\\d+'",
            "invalidParameter",
            location=name,
        ) from None
    if not low <= value <= high:
        raise GoogleError(
            400,
            f"Invalid value '{raw}' for {name}: must be between {low} and {high}",
            "invalidParameter",
            location=name,
        )
    return value
