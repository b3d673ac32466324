"""Every error leaves the hub as application/problem+json (RFC 9457), never as a stack trace."""

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from hub.errors import SwitchboardError

__all__ = ["install_problem_handlers", "problem_response"]

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


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/problem+json")


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


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = _SLUGS.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else slug.replace("_", " ")
    return problem_response(
        exc.status_code,
        {
            "type": slug,
            "title": slug.replace("_", " ").capitalize(),
            "status": exc.status_code,
            "detail": detail,
        },
        dict(exc.headers or {}),
    )


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


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SwitchboardError, _switchboard)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
