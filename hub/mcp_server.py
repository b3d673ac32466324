"""MCP over streamable HTTP at /mcp, on the official SDK's low-level server.

Each HTTP request is authenticated with the agent's bearer key before the SDK sees it, and the handlers
answer from exactly the same catalog and call pipeline as the REST API, so `tools/list` and `tools/call`
can never see more than `GET /v1/tools` and `POST /v1/tools/{tool}/call` for the same key.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from hub.api.agent_routes import pending_body
from hub.api.deps import agent_from_authorization
from hub.api.problems import problem_response
from hub.catalog import agent_tools, render
from hub.errors import SwitchboardError, Unauthenticated
from hub.policy_cache import AgentPrincipal
from hub.runtime import Hub

__all__ = ["McpEndpoint"]

_AGENT = "switchboard_agent"


def _agent(ctx: ServerRequestContext[Any, Any]) -> AgentPrincipal:
    request = ctx.request
    agent = getattr(getattr(request, "state", None), _AGENT, None)
    if not isinstance(agent, AgentPrincipal):  # the endpoint authenticates every request; this is a backstop
        raise Unauthenticated("no agent key on this request")
    return agent


def _session_id(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The MCP session: the untrusted-input rule holds for the rest of it (the SDK checks the id is this
    agent's own)."""
    headers = getattr(ctx.request, "headers", None)
    return headers.get("mcp-session-id") if headers is not None else None


def _text(body: dict[str, Any]) -> types.TextContent:
    return types.TextContent(type="text", text=orjson.dumps(body).decode())


class McpEndpoint:
    """The ASGI endpoint: bearer authentication, then the SDK's session manager."""

    def __init__(self, get_hub: Callable[[], Hub], base_url: str) -> None:
        self._get_hub = get_hub

        async def list_tools(
            ctx: ServerRequestContext[Any, Any], _: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            tools = render(agent_tools(_agent(ctx)), "mcp")
            return types.ListToolsResult(
                tools=[
                    types.Tool(name=t["name"], description=t["description"], input_schema=t["inputSchema"])
                    for t in tools
                ]
            )

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            arguments = dict(params.arguments or {})
            # Tools never declare a `connection` parameter (connectors.base refuses one): it is the hub's.
            connection = arguments.pop("connection", None)
            try:
                outcome = await self._get_hub().calls.run(
                    _agent(ctx), params.name, arguments, connection, _session_id(ctx)
                )
            except SwitchboardError as exc:
                return types.CallToolResult(content=[_text(exc.problem())], is_error=True)
            if outcome.pending is not None:
                # Not a result yet: an error the model reads, saying where the outcome will be.
                return types.CallToolResult(content=[_text(pending_body(outcome))], is_error=True)
            body = {"call_id": outcome.call_id, "result": outcome.result}
            if outcome.notes:
                body["notes"] = list(outcome.notes)
            return types.CallToolResult(content=[_text(body)], structured_content=body)

        self.server: Server[Any] = Server(
            "switchboard", version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool
        )
        self.server.middleware.clear()  # drop the SDK's per-message OpenTelemetry span: it is hot-path cost
        host = urlsplit(base_url).netloc
        self.sessions = StreamableHTTPSessionManager(
            app=self.server,
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=[host, "127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=[
                    f"{urlsplit(base_url).scheme}://{host}",
                    "http://127.0.0.1:*",
                    "http://localhost:*",
                ],
            ),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            try:
                agent = agent_from_authorization(self._get_hub(), headers.get("authorization"))
            except Unauthenticated as exc:
                await problem_response(exc.status, exc.problem(), exc.headers())(scope, receive, send)
                return
            scope.setdefault("state", {})[_AGENT] = agent
            # The SDK binds each MCP session to the `user` that opened it and answers 404 to anyone else,
            # so one agent cannot post into, listen on or end another agent's session.
            scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=f"agent:{agent.id}", scopes=[]))
        await self.sessions.handle_request(scope, receive, send)
