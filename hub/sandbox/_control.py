"""What every sandbox does besides its API: count and log requests, throttle or fail API calls on demand, and
serve the test hooks under `/_control/` (`POST expire-tokens`, `GET stats`, `POST reset-stats`,
`GET issued-tokens`, `POST revoke-all`, `POST throttle`, `POST fault`).

`POST fault` (`{"kind": "slow" | "status" | "reset" | "malformed", "count": N, "status": 5xx, "delay": S}`)
makes the next N API calls fail as a provider does: answered only after `delay` seconds (`slow`; the other
kinds wait `delay` too, 0 by default), a 5xx in the provider's own error shape (`status`, 500 by default), the
connection dropped without an answer (`reset`), or 200 with a truncated JSON body (`malformed`). A throttle
set at the same time answers first. `{"count": 0}` clears it.

A provider composes one `Controls` with four hooks: which paths are API calls, how it reads a throttle
request (and refuses a bad one in its own error shape), what its throttled answer looks like, and its error
answer for a status and a message (a fault's 5xx, a refused fault request's 400).
"""

import asyncio
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, get_args

import orjson
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.sandbox._common import SandboxStats, json_response, route_path

__all__ = ["Controls", "Fault", "Throttle", "TokenAuthority", "decode_object", "throttle_from"]

FaultKind = Literal["slow", "status", "reset", "malformed"]
_KINDS: tuple[str, ...] = get_args(FaultKind)
# What a `malformed` fault answers: JSON cut off mid-object, as a dropped proxy buffer leaves it.
_TRUNCATED = b'{"results": [{"id": "1", "properties": {"name": "tru'


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


@dataclass(frozen=True, slots=True)
class Fault:
    """The next `count` API calls fail this way, each after `delay` seconds (see the module's docstring)."""

    kind: FaultKind = "status"
    count: int = 0
    status: int = 500
    delay: float = 0.0


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


def _fault_from(raw: bytes) -> Fault | str:
    """The fault a control request asks for, or why it is refused."""
    body = decode_object(raw)
    if body is None:
        return "expected a JSON object"
    kind, count = body.get("kind", "status"), body.get("count", 1)
    status, delay = body.get("status", 500), body.get("delay", 0)
    if kind not in _KINDS:
        return f"kind must be one of {', '.join(_KINDS)}"
    if type(count) is not int or count < 0:
        return "count must be a non-negative integer"
    if type(status) is not int or not 500 <= status <= 599:
        return "status must be a 5xx code"
    if type(delay) not in (int, float) or not 0 <= delay <= 600:
        return "delay must be a number of seconds between 0 and 600"
    if kind == "slow" and delay <= 0:
        return "a slow fault needs a delay"
    return Fault(kind, count, status, float(delay))


class _Gate:
    """Pure ASGI middleware: counts and logs requests and serves refusals and faults, before any routing."""

    def __init__(self, app: ASGIApp, controls: "Controls") -> None:
        self.app, self.controls = app, controls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if self.controls.log_control_requests or not path.startswith("/_control/"):
                refused = self.controls.note(scope["method"], path)
                if isinstance(refused, Fault):
                    await self._inflict(refused, scope, receive, send)
                    return
                if refused is not None:
                    await refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _inflict(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.kind == "slow":
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            answer = self.controls.error(fault.status, "The service is temporarily unavailable; try again later.")
            await answer(scope, receive, send)
        elif fault.kind == "malformed":
            await Response(_TRUNCATED, 200, media_type="application/json")(scope, receive, send)
        else:
            await _drop(scope, receive, send)


async def _drop(scope: Scope, receive: Receive, send: Send) -> None:
    """Reset the connection without an HTTP answer.

    ASGI has no way to say so: an app that fails before answering gets a 500 from the server. So this reaches
    for uvicorn's transport (its `receive` is a method of the request cycle that holds it), sends a TCP RST
    (SO_LINGER 0, then abort) and waits until the server has seen the connection go, so it writes nothing more.
    Served some other way, the answer is cut off instead: headers promising a body that never comes."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if transport is None or sock is None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    while (await receive())["type"] != "http.disconnect":
        pass


class Controls:
    """One sandbox's request statistics, throttle, fault and shared test hooks; state under its lock."""

    def __init__(
        self,
        *,
        lock: threading.Lock,
        stats: SandboxStats,
        tokens: TokenAuthority,
        is_api: Callable[[str], bool],
        read_throttle: Callable[[bytes], Throttle],
        throttled: Callable[[Throttle], Response],
        error: Callable[[int, str], Response],
        log_control_requests: bool = False,
    ) -> None:
        """`read_throttle` raises the provider's error for a bad request (its app's handlers answer it);
        `error` is the provider's error answer for a status and a message."""
        self._lock, self.stats, self._tokens = lock, stats, tokens
        self._is_api, self._read_throttle, self._throttled = is_api, read_throttle, throttled
        self.error = error
        self.log_control_requests = log_control_requests
        self._throttle = Throttle()
        self._fault = Fault()

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
            Route("/_control/fault", self._set_fault, methods=["POST"]),
        ]

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens.issued)

    def inject(self, fault: Fault) -> None:
        """Fail the next `fault.count` API calls (replacing any fault still pending)."""
        with self._lock:
            self._fault = fault

    def note(self, method: str, path: str) -> Response | Fault | None:
        """Record a request; a throttled API call gets its answer here, a faulty one the fault to inflict."""
        with self._lock:
            self.stats.log(method, path)
            if not self._is_api(path):
                return None
            self.stats.api_requests += 1
            throttle, fault = self._throttle, self._fault
            if throttle.count > 0:
                self._throttle = replace(throttle, count=throttle.count - 1)
            elif fault.count > 0:
                self._fault = replace(fault, count=fault.count - 1)
                return fault
            else:
                return None
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

    async def _set_fault(self, request: Request) -> Response:
        fault = _fault_from(await request.body())
        if isinstance(fault, str):
            return self.error(400, fault)
        self.inject(fault)
        return Response(status_code=204)
