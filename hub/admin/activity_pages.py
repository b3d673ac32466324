"""The Activity page at /admin/activity: the audit log filtered, searched and paged; one call's detail; and
CSV or JSON-lines exports of what the filters select.

The filter form is a plain GET form: without JavaScript it reloads the page, with htmx it swaps only the
results (and pushes the URL, so a filtered view can be bookmarked and shared). Filtering, paging and exports
go through hub.activity, as `GET /admin/api/audit` does. Included in hub.admin.pages' router, under /admin.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from hub import activity
from hub.activity import ActivityFilter, FilterParams
from hub.admin.answers import SessionToken
from hub.admin.frame import frame, wants_fragment
from hub.admin.rendering import PageRoute, html
from hub.admin.views import EXPLAIN_TOOLS
from hub.api.deps import HubDep
from hub.errors import InvalidArguments
from hub.models import Agent, AuditRecord, Connection

__all__ = ["PAGE_ROWS", "router"]

# No prefix: hub.admin.pages includes this router in its own, under /admin.
router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_ROWS = 50
Filters = Annotated[FilterParams, Depends()]
WITHIN_TEXT = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}


def _choices(session: Session) -> dict[str, Any]:
    return {
        "agents": list(session.scalars(select(Agent.name).order_by(Agent.name))),
        "connections": list(session.scalars(select(Connection.name).order_by(Connection.name))),
        "any_calls": session.scalar(select(AuditRecord.seq).limit(1)) is not None,
    }


@router.get("/activity")
async def activity_page(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    filters: Filters,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The page, or for htmx just its results: a bad filter is said beside the form, with no results."""
    wanted: ActivityFilter | None = None
    error = None
    try:
        wanted = filters.parse()
    except InvalidArguments as exc:
        error = exc.detail

    def load(session: Session) -> dict[str, Any]:
        found = activity.page(session, wanted, before=before, limit=PAGE_ROWS) if wanted is not None else None
        return {"result": found, **_choices(session)}

    context = {
        "filters": filters,
        "wanted": wanted,
        "error": error,
        "within": WITHIN_TEXT,
        "tools": EXPLAIN_TOOLS,
        "problems": activity.PROBLEMS,
        **await hub.db.run(load),
    }
    status = 422 if error else 200
    if wants_fragment(request):
        return html("_activity_results.html", status, **context)
    return html("activity.html", status, **await frame(hub, session_token, here="activity"), **context)


@router.get("/activity/export")
async def activity_export(
    hub: HubDep, _: SessionToken, filters: Filters, format: Literal["csv", "json"] = "csv"
) -> Response:
    """The filtered records as a download, streamed: every record the filters select, not just one page."""
    found = activity.export(hub.db, filters.parse(), format=format)
    return StreamingResponse(found.body, media_type=found.media_type, headers=found.headers)


@router.get("/activity/{call_id}")
async def activity_call(call_id: str, hub: HubDep, session_token: SessionToken) -> Response:
    detail = await hub.db.run(lambda s: activity.call_detail(s, call_id))
    return html("activity_call.html", **await frame(hub, session_token, here="activity"), call=detail)
