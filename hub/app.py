"""The ASGI application: routes, problem handlers, MCP, sandboxes, and the hub's lifespan."""

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from starlette.routing import Route

from hub.admin import approval_link, pages
from hub.api import admin_routes, agent_routes, oauth_routes, ops_routes, usage_routes
from hub.api.body_limit import BodyLimit
from hub.api.call_fast_path import CallFastPath
from hub.api.problems import install_problem_handlers
from hub.mcp_server import McpEndpoint
from hub.runtime import Hub
from hub.settings import Settings

__all__ = ["create_app", "startup_heap_frozen"]


def _mount_sandboxes(app: FastAPI, hub: Hub) -> None:
    from hub.sandbox import SANDBOXES

    for name, endpoints in hub.providers.items():
        if endpoints.sandboxed and name in SANDBOXES:
            sandbox = SANDBOXES[name](client_id=endpoints.client_id or "", client_secret=endpoints.client_secret or "")
            app.state.sandboxes[name] = sandbox
            app.mount(f"/sandbox/{name}", sandbox.app)


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """Keep what startup built (modules, SDKs, schemas: most of the heap, and alive as long as the process)
    out of the garbage collector's sight while serving, so a full collection scans only what calls allocate.
    Measured at 64 clients: full collections 140-160 ms -> 5 ms, p99 186 -> 41-43 ms, hub CPU per call -17%."""
    gc.collect()  # startup's garbage first, or it would be kept for good
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    hub = Hub(settings)
    mcp = McpEndpoint(lambda: hub, settings.base_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            async with mcp.running():
                with startup_heap_frozen():
                    yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="A least-privilege connector hub for AI agents",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # The hub exports its own Prometheus metrics (/metrics); FastAPI's OpenTelemetry hooks would look the
        # providers up on every request only to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.hub = hub
    app.state.sandboxes = {}
    install_problem_handlers(app)
    # The last added runs first: the body limit applies to the fast path too.
    app.add_middleware(CallFastPath)
    app.add_middleware(BodyLimit, limit=agent_routes.MAX_BODY)
    app.include_router(agent_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(pages.router)
    app.include_router(approval_link.router)
    app.include_router(oauth_routes.router)
    app.include_router(ops_routes.router)
    app.router.routes.append(Route("/mcp", endpoint=mcp, methods=["GET", "POST", "DELETE"]))
    if settings.sandbox:
        _mount_sandboxes(app, hub)
    return app
