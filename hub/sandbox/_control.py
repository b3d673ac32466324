"""What every sandbox does besides its API: count and log requests, throttle API calls on demand, and serve
the test hooks under `/_control/` (`POST expire-tokens`, `GET stats`, `POST reset-stats`, `GET issued-tokens`,
`POST revoke-all`, `POST throttle`).

A provider composes one `Controls` with three hooks: which paths are API calls, how it reads a throttle
request (and refuses a bad one in its own error shape), and what its throttled answer looks like.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.sandbox._common import SandboxStats, json_response, route_path

__all__ = ["Controls", "Throttle", "TokenAuthority", "decode_object", "throttle_from"]


class TokenAuthority(Protocol):
    """The part of a provider's OAuth server the test hooks drive."""

    issued: list[str]

    def expire_access_tokens(self) -> None: ...

    def revoke_all(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Throttle:
    """The next `count` API calls are refused; `reason` is a provider's flavour of limit (Google has two)."""

    count: int = 0
    retry_after: int | None = None
    reason: str = ""


def decode_object(raw: bytes) -> dict[str, Any] | None:
    """A control request's JSON object (`{}` for an empty body), or None when the body is not one."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def throttle_from(body: dict[str, Any]) -> Throttle | None:
    """`{"count": N, "retry_after": S | null}` (count defaults to 1), or None when the values are not integers."""
    count, retry_after = body.get("count", 1), body.get("retry_after")
    if not isinstance(count, int) or not (retry_after is None or isinstance(retry_after, int)):
        return None
    return Throttle(count, retry_after)


class _Gate:
    """Pure ASGI middleware: counts and logs requests and serves refusals, before any routing."""

    def __init__(self, app: ASGIApp, controls: "Controls") -> None:
        self.app, self.controls = app, controls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if self.controls.log_control_requests or not path.startswith("/_control/"):
                refused = self.controls.note(scope["method"], path)
                if refused is not None:
                    await refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class Controls:
    """Request statistics, the throttle and the shared test hooks of one sandbox; state under its lock."""

    def __init__(
        self,
        *,
        lock: threading.Lock,
        stats: SandboxStats,
        tokens: TokenAuthority,
        is_api: Callable[[str], bool],
        read_throttle: Callable[[bytes], Throttle],
        throttled: Callable[[Throttle], Response],
        refuse: Callable[[], Response | None] | None = None,
        log_control_requests: bool = False,
    ) -> None:
        """`read_throttle` raises the provider's error for a bad request (its app's handlers answer it);
        `refuse`, called with the lock held for an API call the throttle let through, may fail it otherwise."""
        self._lock, self.stats, self._tokens = lock, stats, tokens
        self._is_api, self._read_throttle, self._throttled, self._refuse = is_api, read_throttle, throttled, refuse
        self.log_control_requests = log_control_requests
        self._throttle = Throttle()

    def middleware(self) -> Middleware:
        return Middleware(_Gate, controls=self)

    def routes(self) -> list[Route]:
        return [
            Route("/_control/expire-tokens", self._expire, methods=["POST"]),
            Route("/_control/stats", self._stats, methods=["GET"]),
            Route("/_control/reset-stats", self._reset, methods=["POST"]),
            Route("/_control/issued-tokens", self._issued, methods=["GET"]),
            Route("/_control/revoke-all", self._revoke, methods=["POST"]),
            Route("/_control/throttle", self._set_throttle, methods=["POST"]),
        ]

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens.issued)

    def note(self, method: str, path: str) -> Response | None:
        """Record a request; a throttled (or otherwise refused) API call gets its answer here."""
        with self._lock:
            self.stats.log(method, path)
            if not self._is_api(path):
                return None
            self.stats.api_requests += 1
            throttle = self._throttle
            if throttle.count <= 0:
                return self._refuse() if self._refuse is not None else None
            self._throttle = Throttle(throttle.count - 1, throttle.retry_after, throttle.reason)
        return self._throttled(throttle)

    async def _expire(self, request: Request) -> Response:
        self._tokens.expire_access_tokens()
        return Response(status_code=204)

    async def _stats(self, request: Request) -> Response:
        with self._lock:
            return json_response(self.stats.snapshot())

    async def _reset(self, request: Request) -> Response:
        with self._lock:
            self.stats.reset()
        return Response(status_code=204)

    async def _issued(self, request: Request) -> Response:
        return json_response({"tokens": self.issued_tokens()})

    async def _revoke(self, request: Request) -> Response:
        self._tokens.revoke_all()
        return Response(status_code=204)

    async def _set_throttle(self, request: Request) -> Response:
        throttle = self._read_throttle(await request.body())
        with self._lock:
            self._throttle = throttle
        return Response(status_code=204)
