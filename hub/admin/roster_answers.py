"""How an agent's own page answers a form: the whole page, or for htmx its agent section, with a notice or a
form's error. Shared by the routes that change one agent (hub.admin.roster_pages, hub.admin.policy_pages).

Without JavaScript a change is answered Post/Redirect/Get to `/admin/agents/{name}?done=<code>`, except where
a new key must be shown once.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.admin.answers import DONE
from hub.admin.frame import frame, wants_fragment
from hub.admin.rendering import FormError, html, render
from hub.admin.roster_views import load_agent_page
from hub.errors import NotFound, SwitchboardError
from hub.runtime import Hub

__all__ = ["AGENT_DONE", "NewKey", "agent_failed", "agent_succeeded", "agent_url", "show_agent"]

# The agent-section notices of the dashboard's set, and the agent page's own; a fixed set, so a crafted
# link cannot make the page say something the hub did not.
AGENT_DONE = {
    **{code: text for code, (section, text) in DONE.items() if section == "agents"},
    "agent-saved": "Details saved.",
}


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made, shown in this one answer and never again."""

    agent: str
    key: str


def agent_url(name: str) -> str:
    return f"/admin/agents/{quote(name, safe='')}"


async def show_agent(
    request: Request,
    hub: Hub,
    session_token: str,
    *,
    name: str,
    status: int = 200,
    section: str = "agent",
    **context: Any,
) -> Response:
    """The agent's page, or for htmx one of its sections: `agent` (all that changes), or `agent_calls`."""
    page: dict[str, Any] = {
        **await frame(hub, session_token, here="agents"),
        # Raises NotFound for an agent that does not exist: the error page (or the flash area) says so.
        "view": await hub.db.run(lambda s: load_agent_page(s, name=name)),
        "notice": None,
        "error": None,
        "form": {},
        "new_key": None,
        **context,
    }
    if not wants_fragment(request):
        return html("agent.html", status, **page)
    return HTMLResponse(render(f"_{section}.html", **page), status_code=status)


async def agent_failed(
    request: Request,
    hub: Hub,
    session_token: str,
    exc: SwitchboardError,
    *,
    name: str,
    form_id: str,
    field: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    """The agent section again, the service's message beside the form (or atop the section, for something
    no longer there), with the service's 4xx status."""
    where = "agent" if isinstance(exc, NotFound) else form_id
    return await show_agent(
        request,
        hub,
        session_token,
        name=name,
        status=exc.status,
        error=FormError(where, exc.detail, field),
        form=form or {},
    )


async def agent_succeeded(request: Request, hub: Hub, session_token: str, *, name: str, done: str) -> Response:
    if wants_fragment(request):
        return await show_agent(request, hub, session_token, name=name, notice=("agent", AGENT_DONE[done]))
    return RedirectResponse(f"{agent_url(name)}?done={done}", status_code=303)
