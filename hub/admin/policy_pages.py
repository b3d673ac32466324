"""The admin page's policy parts: calls waiting for approval, each agent's flow rules and untrusted-session
policy (answered on the agent's own page, hub.admin.roster_answers), and Explain (what policy would decide
for a call, every rule that fired).

Included in hub.admin.pages' router, so the same rules hold: PageRoute answers errors as HTML, every form
works as a plain POST without JavaScript, and hub.api.deps.current_admin checks the CSRF token first. The
routes call what /admin/api calls (hub.agents, decide_call, explain_call), then `hub.changed()` where
policy changed.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub import agents as agent_service
from hub.admin.answers import SessionToken, failed, json_object, show, succeeded
from hub.admin.rendering import PageRoute
from hub.admin.roster_answers import agent_failed, agent_succeeded
from hub.api.admin_routes import decide_call, explain_call
from hub.api.deps import HubDep
from hub.api.params import RowId
from hub.errors import InvalidArguments, SwitchboardError

__all__ = ["router"]

# No prefix: hub.admin.pages includes this router in its own, under /admin.
router = APIRouter(route_class=PageRoute, include_in_schema=False)

_MAX_ARGUMENTS = 20_000
_MAX_SESSION = 128
_DECIDED_BY = "admin (admin page)"


# --- approvals -----------------------------------------------------------------------------------------


async def _decide(request: Request, hub: HubDep, session_token: str, call_id: str, *, approve: bool) -> Response:
    try:
        # Recorded once: a second decision (another admin, a signed link, the CLI) is a 409 shown inline.
        await decide_call(hub, call_id, approve=approve, by=_DECIDED_BY)
    except SwitchboardError as exc:
        return await failed(request, hub, session_token, exc, section="approvals", form_id="approvals")
    return await succeeded(request, hub, session_token, section="approvals", done="approved" if approve else "denied")


@router.post("/approvals/{call_id}/approve")
async def approve(request: Request, call_id: str, hub: HubDep, session_token: SessionToken) -> Response:
    return await _decide(request, hub, session_token, call_id, approve=True)


@router.post("/approvals/{call_id}/deny")
async def deny(request: Request, call_id: str, hub: HubDep, session_token: SessionToken) -> Response:
    return await _decide(request, hub, session_token, call_id, approve=False)


# --- flow rules and the untrusted-session policy -------------------------------------------------------


@router.post("/agents/{name}/flow-rules")
async def add_flow_rule(
    request: Request,
    name: str,
    hub: HubDep,
    session_token: SessionToken,
    label: Annotated[str, Form(max_length=64)] = "",
    target: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    def add(session: Session) -> None:
        agent_service.add_flow_rule(
            session, agent=agent_service.get_agent(session, name=name), label=label, target=target
        )

    try:
        await hub.db.run(add)
    except SwitchboardError as exc:
        form = {"label": label, "target": target}
        return await agent_failed(request, hub, session_token, exc, name=name, form_id=f"flow-form-{name}", form=form)
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="flow-rule-added")


@router.post("/agents/{name}/flow-rules/{rule_id}/remove")
async def remove_flow_rule(
    request: Request, name: str, rule_id: RowId, hub: HubDep, session_token: SessionToken
) -> Response:
    def remove(session: Session) -> None:
        agent_service.remove_flow_rule(session, agent=agent_service.get_agent(session, name=name), rule_id=rule_id)

    try:
        await hub.db.run(remove)
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="flow-rules")
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="flow-rule-removed")


@router.post("/agents/{name}/untrusted-policy")
async def set_untrusted_policy(
    request: Request,
    name: str,
    hub: HubDep,
    session_token: SessionToken,
    policy: Annotated[Literal["approve", "refuse"], Form()],
) -> Response:
    def update(session: Session) -> None:
        agent_service.set_untrusted_policy(session, agent=agent_service.get_agent(session, name=name), policy=policy)

    try:
        await hub.db.run(update)
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id=f"untrusted-form-{name}")
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="untrusted-policy-set")


# --- explain -------------------------------------------------------------------------------------------


@router.post("/explain")
async def explain(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    agent: Annotated[str, Form(max_length=64)] = "",
    tool: Annotated[str, Form(max_length=64)] = "",
    connection: Annotated[str, Form(max_length=64)] = "",
    arguments: Annotated[str, Form()] = "",
    session: Annotated[str, Form()] = "",
) -> Response:
    """What policy would decide for the call now. Nothing is called, counted or stored, so the answer is
    rendered in place (no redirect), with the form still filled in for the next try."""
    asked = {"agent": agent, "tool": tool, "connection": connection, "arguments": arguments, "session": session}
    try:
        parsed = json_object(arguments, what="arguments", example='{"query": "ada"}', limit=_MAX_ARGUMENTS)
    except InvalidArguments as exc:
        return await failed(
            request, hub, session_token, exc, section="explain", form_id="explain-form", field="arguments", asked=asked
        )
    try:
        if len(session.strip()) > _MAX_SESSION:
            raise InvalidArguments(f"a session id is at most {_MAX_SESSION} characters")
        explained = await explain_call(
            hub,
            agent=agent,
            tool=tool.strip(),
            connection=connection or None,
            arguments=parsed,
            session=session.strip() or None,
        )
    except SwitchboardError as exc:
        return await failed(request, hub, session_token, exc, section="explain", form_id="explain-form", asked=asked)
    return await show(request, hub, session_token, section="explain", explained=explained, asked=asked)
