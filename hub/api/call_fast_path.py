"""The tool-call route served as pure ASGI, in front of the router.

`POST /v1/tools/{tool}/call` is the hot path. Through Starlette's exception middleware, the router (which
tries every route in turn), FastAPI's per-request exit stacks and dependency solving, and the exception
wrapper, a call spent more CPU reaching its handler than the handler spent deciding it. This middleware
matches the one path itself and runs the same handler (`agent_routes.call_tool`) with the same problem
answers as the installed handlers. The route stays registered with FastAPI: it is what the OpenAPI document
describes, and what answers the path's other methods (405).
"""

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.api.agent_routes import call_tool
from hub.api.problems import problem_for

__all__ = ["CallFastPath"]

_CALL = re.compile(r"/v1/tools/([^/]+)/call")


class CallFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = _CALL.fullmatch(_route_path(scope)) if scope["type"] == "http" and scope["method"] == "POST" else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"tool": matched.group(1)}
        request = Request(scope, receive, send)
        try:
            response = await call_tool(request)
        except Exception as exc:
            response = await problem_for(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the router would match: without the root path the app is mounted under, if any."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
