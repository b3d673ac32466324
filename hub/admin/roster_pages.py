"""The agent roster on the admin page: creating agents (the dashboard's roster), and each agent's own page at
/admin/agents/{name} with its details, keys, grants and latest calls. Its flow rules and untrusted-session
policy are set through hub.admin.policy_pages, which answers on the same page.

Included in hub.admin.pages' router, so the same rules hold: PageRoute answers errors as HTML, every form
works as a plain POST without JavaScript, and hub.api.deps.current_admin checks the CSRF token first. The
routes call what /admin/api calls (hub.agents), then `hub.changed()`.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from hub import agents as agent_service
from hub.admin.answers import SessionToken, failed, json_object, show, succeeded
from hub.admin.frame import wants_fragment
from hub.admin.rendering import PageRoute
from hub.admin.roster_answers import AGENT_DONE, NewKey, agent_failed, agent_succeeded, agent_url, show_agent
from hub.api.deps import HubDep
from hub.api.params import RowId
from hub.errors import InvalidArguments, NotFound, SwitchboardError
from hub.models import Grant, utcnow

__all__ = ["router"]

# No prefix: hub.admin.pages includes this router in its own, under /admin.
router = APIRouter(route_class=PageRoute, include_in_schema=False)

_MAX_CONSTRAINTS = 20_000
_ROSTER = ("description", "role", "owner", "model", "runtime")
# A form field a little longer than any column: the service says what the limit is, rather than a bare 422.
_Text = Annotated[str, Form(max_length=4000)]


def _roster(**fields: str) -> dict[str, str]:
    return {name: fields[name] for name in _ROSTER}


# --- the roster: creating an agent ---------------------------------------------------------------------


@router.post("/agents")
async def create_agent(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    name: Annotated[str, Form(max_length=200)] = "",
    description: _Text = "",
    role: _Text = "",
    owner: _Text = "",
    model: _Text = "",
    runtime: _Text = "",
) -> Response:
    name = name.strip()
    roster = _roster(description=description, role=role, owner=owner, model=model, runtime=runtime)
    try:
        key = await hub.db.run(lambda s: agent_service.create_agent(s, name=name, **roster)[1])
    except SwitchboardError as exc:
        form = {"name": name, **roster}
        return await failed(request, hub, session_token, exc, section="agents", form_id="create-agent", form=form)
    await hub.changed()
    # Rendered, not redirected: the key exists only in this response and is never retrievable again.
    return await show(request, hub, session_token, section="agents", status=201, new_key=NewKey(name, key))


# --- one agent's page ----------------------------------------------------------------------------------


@router.get("/agents/{name}")
async def agent_page(request: Request, name: str, hub: HubDep, session_token: SessionToken, done: str = "") -> Response:
    notice = ("agent", AGENT_DONE[done]) if done in AGENT_DONE else None
    return await show_agent(request, hub, session_token, name=name, notice=notice)


@router.get("/agents/{name}/calls")
async def agent_calls(request: Request, name: str, hub: HubDep, session_token: SessionToken) -> Response:
    """The agent's latest calls alone, for htmx to refresh."""
    if not wants_fragment(request):
        return RedirectResponse(f"{agent_url(name)}#calls", status_code=303)
    return await show_agent(request, hub, session_token, name=name, section="agent_calls")


@router.post("/agents/{name}")
async def save_details(
    request: Request,
    name: str,
    hub: HubDep,
    session_token: SessionToken,
    description: _Text = "",
    role: _Text = "",
    owner: _Text = "",
    model: _Text = "",
    runtime: _Text = "",
) -> Response:
    roster = _roster(description=description, role=role, owner=owner, model=model, runtime=runtime)
    try:
        await hub.db.run(lambda s: agent_service.update_agent(s, agent=agent_service.get_agent(s, name=name), **roster))
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="details-form", form=roster)
    return await agent_succeeded(request, hub, session_token, name=name, done="agent-saved")


def _expiry(expires_on: str) -> datetime | None:
    if not expires_on.strip():
        return None
    try:
        day = date.fromisoformat(expires_on.strip())
    except ValueError:
        raise InvalidArguments("the expiry date must look like 2030-12-31") from None
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if moment <= utcnow():
        raise InvalidArguments("the expiry date must be in the future")
    return moment


@router.post("/agents/{name}/keys")
async def create_key(
    request: Request,
    name: str,
    hub: HubDep,
    session_token: SessionToken,
    expires_on: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        expires_at = _expiry(expires_on)
        key = await hub.db.run(
            lambda s: agent_service.create_key(s, agent=agent_service.get_agent(s, name=name), expires_at=expires_at)
        )
    except SwitchboardError as exc:
        form = {"expires_on": expires_on}
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="key-form", form=form)
    await hub.changed()
    # Rendered, not redirected: the key exists only in this response.
    return await show_agent(request, hub, session_token, name=name, status=201, new_key=NewKey(name, key))


@router.post("/agents/{name}/keys/{key_id}/revoke")
async def revoke_key(request: Request, name: str, key_id: RowId, hub: HubDep, session_token: SessionToken) -> Response:
    try:
        await hub.db.run(
            lambda s: agent_service.revoke_key(s, agent=agent_service.get_agent(s, name=name), key_id=key_id)
        )
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="keys")
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="key-revoked")


@router.post("/agents/{name}/disable")
async def disable_agent(request: Request, name: str, hub: HubDep, session_token: SessionToken) -> Response:
    await hub.db.run(lambda s: agent_service.disable_agent(s, agent=agent_service.get_agent(s, name=name)))
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="agent-disabled")


# --- grants --------------------------------------------------------------------------------------------


def _constraints(text: str) -> dict[str, Any]:
    return json_object(text, what="constraints", example='{"max_results": 50}', limit=_MAX_CONSTRAINTS)


def _grant(agent: str, connection: str, scope: str, constraints: dict[str, Any]) -> Callable[[Session], None]:
    def grant(session: Session) -> None:
        agent_service.add_grant(
            session,
            agent=agent_service.get_agent(session, name=agent),
            connection=agent_service.get_connection(session, name=connection),
            scope=scope,
            constraints=constraints,
        )

    return grant


@router.post("/grants")
async def add_grant(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    agent: Annotated[str, Form()] = "",
    connection: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    constraints: Annotated[str, Form()] = "",
) -> Response:
    """The dashboard's grant form, which names the agent."""
    form = {"agent": agent, "connection": connection, "scope": scope, "constraints": constraints}
    try:
        parsed = _constraints(constraints)
    except InvalidArguments as exc:
        return await failed(
            request, hub, session_token, exc, section="agents", form_id="grant-form", field="constraints", form=form
        )
    try:
        await hub.db.run(_grant(agent, connection, scope, parsed))
    except SwitchboardError as exc:
        return await failed(request, hub, session_token, exc, section="agents", form_id="grant-form", form=form)
    await hub.changed()
    return await succeeded(request, hub, session_token, section="agents", done="granted")


@router.post("/agents/{name}/grants")
async def add_agent_grant(
    request: Request,
    name: str,
    hub: HubDep,
    session_token: SessionToken,
    connection: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    constraints: Annotated[str, Form()] = "",
) -> Response:
    """The agent page's grant form."""
    form = {"connection": connection, "scope": scope, "constraints": constraints}
    try:
        parsed = _constraints(constraints)
    except InvalidArguments as exc:
        return await agent_failed(
            request, hub, session_token, exc, name=name, form_id="grant-form", field="constraints", form=form
        )
    try:
        await hub.db.run(_grant(name, connection, scope, parsed))
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="grant-form", form=form)
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="granted")


@router.post("/agents/{name}/grants/{grant_id}/revoke")
async def revoke_grant(
    request: Request, name: str, grant_id: RowId, hub: HubDep, session_token: SessionToken
) -> Response:
    def remove(session: Session) -> None:
        grant = session.get(Grant, grant_id)
        if grant is None or grant.agent.name != name:
            raise NotFound(f"agent {name!r} has no grant {grant_id}; it may have been revoked already")
        agent_service.remove_grant(session, agent=grant.agent, connection=grant.connection, scope=grant.scope)

    try:
        await hub.db.run(remove)
    except SwitchboardError as exc:
        return await agent_failed(request, hub, session_token, exc, name=name, form_id="grants")
    await hub.changed()
    return await agent_succeeded(request, hub, session_token, name=name, done="grant-revoked")
