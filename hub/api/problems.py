"""Every error leaves the hub as application/problem+json (RFC 9457), never as a stack trace.

A database that cannot be reached is answered 503 `service_unavailable` with Retry-After, wherever the error
surfaced (hub.db reports the outage in the log once, not per request); any other unexpected error is a 500.

`problem_responses(...)` documents those answers in the OpenAPI document, against the `Problem` schema that
`install_problem_handlers` adds to it, so what a route is declared to return is what it returns.
"""

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from hub.db import database_unavailable, is_unavailable
from hub.errors import SwitchboardError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "FieldError",
    "Problem",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
    "problem_responses",
]

log = logging.getLogger(__name__)
_SLUGS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_arguments",
    429: "rate_limited",
    503: "service_unavailable",
}
PROBLEM_MEDIA_TYPE = "application/problem+json"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FieldError(BaseModel):
    field: str = Field(description="Where the error is, e.g. 'arguments.email', or '(root)'.")
    message: str


class Problem(BaseModel):
    """An error (RFC 9457). Some carry more members, e.g. `scopes` on a denial or `call_id` on a failed call."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A stable slug naming the kind of error, e.g. 'scope_denied'.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, written for the caller; never holds a secret.")
    errors: list[FieldError] | None = Field(default=None, description="Each invalid field, when input was invalid.")


_WHY = {
    400: "Malformed request: a body that cannot be read as JSON, a bad header, or a bad OAuth callback",
    401: "No credentials, or unknown, revoked or expired ones",
    403: "Refused: scope not granted, constraint violated, data flow blocked, approval denied, or no CSRF token",
    404: "No such resource (or tool)",
    409: "Conflicts with the current state: it exists already, was decided already, or needs re-authorisation",
    413: "The request body is over the hub's size limit",
    422: "The request does not match the schema, or the values are invalid",
    429: "Rate limited; Retry-After says when to try again",
    502: "The provider failed",
    503: "The hub cannot serve this right now; try again shortly",
    504: "The provider did not answer in time",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries for the problem+json errors a route can answer with."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        status: {"description": _WHY[status], "content": {PROBLEM_MEDIA_TYPE: ref}}
        | ({"headers": _HEADERS[status]} if status in _HEADERS else {})
        for status in statuses
    }


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _from_error(exc: SwitchboardError) -> Response:
    if exc.log_detail:
        log.info("%s: %s", exc.code, exc.log_detail)
    return problem_response(exc.status, exc.problem(), exc.headers())


async def _switchboard(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SwitchboardError)
    return _from_error(exc)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return problem_response(
        422,
        {
            "type": "invalid_arguments",
            "title": "Invalid request",
            "status": 422,
            "detail": "the request does not match the API's schema",
            "errors": errors,
        },
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to (RFC 9110: Allow lists the resource's methods), not only the methods of
    the first route whose path matched, which is all Starlette's 405 names."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = _SLUGS.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else slug.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(
        exc.status_code,
        {
            "type": slug,
            "title": slug.replace("_", " ").capitalize(),
            "status": exc.status_code,
            "detail": detail,
        },
        headers,
    )


async def _database(request: Request, exc: Exception) -> Response:
    """A database error that reached the app raw (most are turned into DatabaseUnavailable by hub.db)."""
    if is_unavailable(exc):
        return _from_error(database_unavailable(exc))
    return await _unexpected(request, exc)


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        500,
        {
            "type": "internal_error",
            "title": "Internal error",
            "status": 500,
            "detail": "the hub failed; its log has the detail",
        },
    )


async def problem_for(request: Request, exc: Exception) -> Response:
    """What the installed handlers answer for `exc`, for a route served in front of the router
    (`hub.api.call_fast_path`), where neither validation nor HTTP errors arise."""
    if isinstance(exc, SwitchboardError):
        return _from_error(exc)
    if isinstance(exc, SQLAlchemyError):
        return await _database(request, exc)
    return await _unexpected(request, exc)


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _with_problem_schema(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`app.openapi` that also defines the `Problem` schema `problem_responses` refers to, and says `_validation`'s
    problem wherever FastAPI declared its own validation error body (a route that declares no 422 itself)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defined = {"Problem": schema, **schema.pop("$defs", {})}
    invalid = problem_responses(422)[422]

    def openapi() -> dict[str, Any]:
        document = build()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                content = responses.get("422", {}).get("content", {})
                if content.get("application/json", {}).get("schema", {}).get("$ref") == _FASTAPI_422:
                    responses["422"] = invalid
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas.update(defined)
        return document

    return openapi


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SwitchboardError, _switchboard)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(SQLAlchemyError, _database)
    app.add_exception_handler(Exception, _unexpected)
    app.openapi = _with_problem_schema(app.openapi)  # type: ignore[method-assign]
