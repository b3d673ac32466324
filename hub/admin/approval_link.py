"""One-time signed approval links (`POST /admin/api/approvals/{id}/link`) for a named approver.

GET shows the call (agent, tool, connection, exact arguments, why it waits) and never acts, so a mail
scanner that follows the link decides nothing; the POST of its form decides. The token is the capability:
signed by the hub, bound to one call and one approver, expiring with the call, and usable while the call is
pending, so once.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Form
from starlette.responses import Response

from hub import approvals
from hub.admin.rendering import PageRoute, html
from hub.api.admin_routes import decide_call
from hub.api.deps import HubDep

__all__ = ["router"]

router = APIRouter(prefix="/approve", route_class=PageRoute, include_in_schema=False)


@router.get("/{token}")
async def show(token: str, hub: HubDep) -> Response:
    call_id, approver = approvals.read_link(hub.secret_key, token)
    found = await hub.db.run(lambda s: approvals.view(approvals.get(s, call_id), hub.vault))
    return html("approve_link.html", csrf=None, approval=found, approver=approver, token=token, decided=None)


@router.post("/{token}")
async def decide(token: str, hub: HubDep, decision: Annotated[Literal["approve", "deny"], Form()]) -> Response:
    call_id, approver = approvals.read_link(hub.secret_key, token)
    decided = await decide_call(hub, call_id, approve=decision == "approve", by=f"{approver} (signed link)")
    found = await hub.db.run(lambda s: approvals.view(approvals.get(s, call_id), hub.vault))
    return html(
        "approve_link.html", csrf=None, approval=found, approver=approver, token=token, decided=decided["status"]
    )
