"""How an admin page answers a form: the whole page, or for htmx one section, with a notice or a form's error.

Shared by the page modules (hub.admin.pages, hub.admin.policy_pages): the signed-in session every page
needs, the fixed set of "done" notices a redirect may name, and the parsing of JSON typed into a form.
"""

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.admin.rendering import FormError, html, is_htmx, render
from hub.admin.views import load_dashboard, provider_choices
from hub.admin_auth import csrf_token
from hub.api.deps import AdminDep
from hub.errors import InvalidArguments, SwitchboardError, Unauthenticated
from hub.runtime import Hub

__all__ = ["DONE", "SessionToken", "failed", "json_object", "show", "succeeded"]

# After a plain (non-htmx) POST the browser is redirected with one of these codes; a fixed set, so a
# crafted link cannot make the page say something the hub did not. Each names the section it concerns.
DONE = {
    "connection-revoked": ("connections", "Connection revoked: its tokens are gone and its grants stop working."),
    "key-revoked": ("agents", "Key revoked: it stopped working at once."),
    "agent-disabled": ("agents", "Agent disabled: all its keys stopped working."),
    "granted": ("agents", "Grant saved: the agent sees the scope's tools on its next request."),
    "grant-revoked": ("agents", "Grant revoked: its tools are gone from the agent's next request."),
    "flow-rule-added": ("agents", "Flow rule saved: that data may now flow into that target."),
    "flow-rule-removed": ("agents", "Flow rule removed: that data is blocked from that target again."),
    "untrusted-policy-set": ("agents", "Untrusted-session policy saved: it applies from the agent's next call."),
    "approved": ("approvals", "Approved: the call runs now, once, with exactly the arguments shown."),
    "denied": ("approvals", "Denied: the call will not run; the agent is told so."),
}


async def _signed_in(admin: AdminDep) -> str:
    """The page session token: pages need one, because their CSRF token is bound to it."""
    if admin.via != "session" or admin.session_token is None:
        raise Unauthenticated("sign in with a link from `switchboard admin link`")
    return admin.session_token


SessionToken = Annotated[str, Depends(_signed_in)]


async def show(
    request: Request,
    hub: Hub,
    session_token: str,
    *,
    section: str | None,
    status: int = 200,
    also: tuple[str, ...] = (),
    **context: Any,
) -> Response:
    """The whole page, or for htmx just `section` (plus `also`, swapped out of band)."""
    page: dict[str, Any] = {
        "csrf": csrf_token(hub.secret_key, session_token),
        "data": await hub.db.run(lambda s: load_dashboard(s, hub.vault)),
        "providers": provider_choices(hub.providers),
        "notice": None,
        "error": None,
        "form": {},
        "new_key": None,
        "connected": None,
        # The Explain form's answer and what it was asked; kept apart from `form`, which the grant form
        # reads whatever the form, so that it does not pick up Explain's agent or connection.
        "explained": None,
        "asked": {},
        "oob": False,
        **context,
    }
    if section is None or not is_htmx(request):
        return html("dashboard.html", status, **page)
    if section == "approvals":
        also = (*also, "approvals_badge")  # the nav link's count follows the queue
    body = render(f"_{section}.html", **page)
    body += "".join(render(f"_{extra}.html", **{**page, "oob": True}) for extra in also)
    return HTMLResponse(body, status_code=status)


async def failed(
    request: Request,
    hub: Hub,
    session_token: str,
    exc: SwitchboardError,
    *,
    section: str,
    form_id: str,
    field: str | None = None,
    form: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    """The section again, with the service's message beside the form, and the service's 4xx status."""
    return await show(
        request,
        hub,
        session_token,
        section=section,
        status=exc.status,
        error=FormError(form_id, exc.detail, field),
        form=form or {},
        **context,
    )


async def succeeded(
    request: Request, hub: Hub, session_token: str, *, section: str, done: str, also: tuple[str, ...] = ()
) -> Response:
    if is_htmx(request):
        return await show(request, hub, session_token, section=section, notice=DONE[done], also=also)
    return RedirectResponse(f"/admin/?done={done}#{section}", status_code=303)


def _reject_constant(name: str) -> None:
    # NaN and Infinity are not JSON; PostgreSQL would refuse to store them.
    raise ValueError(f"{name} is not allowed in JSON")


def json_object(text: str, *, what: str, example: str, limit: int) -> dict[str, Any]:
    """A JSON object typed into a form (empty means {}); InvalidArguments says what is wrong and where."""
    if not text.strip():
        return {}
    if len(text) > limit:
        raise InvalidArguments(f"{what} are limited to {limit} characters")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InvalidArguments(f"{what} are not valid JSON: {exc.msg} ({where})") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidArguments(f"{what} are not valid JSON: {str(exc)[:100]}") from None
    if not isinstance(value, dict):
        raise InvalidArguments(f"{what} must be a JSON object, like {example}")
    return value
