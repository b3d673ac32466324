"""Liveness, readiness and Prometheus metrics."""

from typing import Literal

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from hub.api.deps import HubDep
from hub.db import is_current

__all__ = ["router"]

router = APIRouter(tags=["operations"])


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    database: Literal["unreachable", "migrations pending"] | None = None


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated",
    responses={200: {"model": Readiness}, 503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(hub: HubDep) -> Response:
    try:
        current = await hub.db.run(lambda s: is_current(hub.db.engine))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if not current:
        return JSONResponse({"status": "unavailable", "database": "migrations pending"}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
