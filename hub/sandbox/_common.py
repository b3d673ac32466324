"""What every sandbox provider shares: request statistics and cheap JSON responses."""

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["MAX_LOGGED_REQUESTS", "Sandbox", "SandboxFactory", "SandboxStats", "json_response", "route_path"]

# A benchmark sends millions of requests; keep the log bounded so the sandbox never becomes the leak.
MAX_LOGGED_REQUESTS = 10_000


@dataclass
class SandboxStats:
    """Counters the tests and benchmarks read; mutate only while holding the sandbox's lock."""

    api_requests: int = 0
    token_requests: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def log(self, method: str, path: str) -> None:
        if len(self.requests) >= MAX_LOGGED_REQUESTS:
            del self.requests[: MAX_LOGGED_REQUESTS // 2]  # amortised O(1): trim in halves, oldest first
        self.requests.append((method, path))

    def count_token_request(self, grant_type: str) -> None:
        self.token_requests[grant_type] = self.token_requests.get(grant_type, 0) + 1

    def reset(self) -> None:
        # In place, so that anyone holding `sandbox.stats` keeps seeing the live object.
        self.api_requests = 0
        self.token_requests.clear()
        self.requests.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "api_requests": self.api_requests,
            "token_requests": dict(self.token_requests),
            "requests": [list(r) for r in self.requests],
        }


class Sandbox(Protocol):
    """What the hub, the tests and the benchmarks rely on, whichever provider it emulates."""

    app: Starlette
    stats: SandboxStats

    def expire_access_tokens(self) -> None: ...


class SandboxFactory(Protocol):
    def __call__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int = ...,
        rotate_refresh_tokens: bool = ...,
    ) -> Sandbox: ...


def json_response(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code, headers, media_type="application/json")


def route_path(scope: Scope) -> str:
    """The request path relative to where the app is mounted (Starlette keeps the full path in `path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
