"""The Python floor: a minimal pass-through proxy for the benchmarked tool call.

FastAPI on uvicorn, one worker, one pooled keep-alive aiohttp session made at start-up; it forwards
`POST /v1/tools/hubspot_contacts_get/call` to the upstream GET and returns the JSON. No auth, policy or audit:
whatever the hub costs beyond this is the price of what it does. Run as `python -m bench.proxy --port P` with
BENCH_UPSTREAM (base URL) and BENCH_UPSTREAM_TOKEN (bearer) in the environment, never on the command line.
"""

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from bench.upstream import TOOL, contact_path

__all__ = ["create_app"]


def create_app(upstream: str, token: str) -> FastAPI:
    session: aiohttp.ClientSession | None = None
    headers = {"Authorization": f"Bearer {token}"}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal session
        session = aiohttp.ClientSession(upstream, connector=aiohttp.TCPConnector(limit=64), headers=headers)
        try:
            yield
        finally:
            await session.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post(f"/v1/tools/{TOOL}/call")
    async def call(request: Request) -> Response:
        assert session is not None
        arguments = orjson.loads(await request.body())["arguments"]
        async with session.get(contact_path(str(arguments["contact_id"]))) as upstream_response:
            body = await upstream_response.read()
            return Response(body, upstream_response.status, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b"ok")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["BENCH_UPSTREAM"], os.environ["BENCH_UPSTREAM_TOKEN"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
