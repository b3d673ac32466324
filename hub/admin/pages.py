"""The admin page at /admin/: sign-in by one-time link, connections, audit. Agents, their pages, keys and
grants are in hub.admin.roster_pages; approvals, flow rules, untrusted-session policy and Explain in
hub.admin.policy_pages; all on this router.

Server-rendered with Jinja2; htmx swaps one section at a time, and every form still works as a plain
POST without JavaScript (Post/Redirect/Get, except where a new key must be shown once). Unsafe requests
carry the session's CSRF token (hidden field `csrf_token`, or htmx's `X-CSRF-Token` header), which
hub.api.deps.current_admin checks before any handler runs. Changes go through the same service
functions as /admin/api, followed by `hub.changed()`.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from hub.admin import activity_pages, policy_pages, roster_pages, usage_pages
from hub.admin.answers import DONE, SessionToken, failed, show, succeeded
from hub.admin.rendering import STATIC, PageRoute, html, is_htmx
from hub.admin_auth import SESSION_COOKIE, end_session, redeem_login
from hub.api.deps import HubDep
from hub.connections import connect_with_api_key, list_connections
from hub.errors import InvalidArguments, NotFound, SwitchboardError
from hub.runtime import Hub
from hub.schemas import ConnectionRead

__all__ = ["router"]

router = APIRouter(prefix="/admin", route_class=PageRoute, include_in_schema=False)

_SECTIONS = ("connections", "agents", "approvals", "audit")
_MAX_API_KEY = 1_000


def _secure_cookie(hub: Hub) -> bool:
    return hub.settings.base_url.startswith("https://")


# --- sign-in -------------------------------------------------------------------------------------------


@router.get("/")
async def dashboard(
    request: Request, hub: HubDep, session_token: SessionToken, connected: str | None = None, done: str = ""
) -> Response:
    return await show(request, hub, session_token, section=None, notice=DONE.get(done), connected=connected)


@router.get("/login")
async def login(request: Request, hub: HubDep, token: str = "") -> Response:
    previous = request.cookies.get(SESSION_COOKIE)

    def redeem(session: Session) -> str | None:
        if not token or len(token) > 200:
            return None
        fresh = redeem_login(session, token, session_ttl=hub.settings.admin_session_ttl)
        if fresh is not None and previous:
            end_session(session, previous)  # whatever session this browser held before is over
        return fresh

    fresh = await hub.db.run(redeem)
    if fresh is None:
        return html("signin.html", 401, csrf=None, problem="link", signed_out=False)
    response = RedirectResponse("/admin/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        fresh,
        max_age=hub.settings.admin_session_ttl,
        path="/",
        secure=_secure_cookie(hub),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
async def logout(hub: HubDep, session_token: SessionToken) -> Response:
    await hub.db.run(lambda s: end_session(s, session_token))
    response = html("signin.html", 200, csrf=None, problem=None, signed_out=True)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure_cookie(hub), httponly=True, samesite="lax")
    return response


# --- connections ---------------------------------------------------------------------------------------


async def _picked(request: Request) -> list[str]:
    # Checkboxes submit `scopes` once per box, as `<provider>:<hub scope>` since providers share scope names.
    return [str(v) for v in (await request.form()).getlist("scopes")]


def _scopes_of(provider: str, picked: list[str]) -> list[str]:
    scopes = [s.partition(":")[2] for s in picked if s.partition(":")[0] == provider]
    if len(scopes) != len(picked):
        raise InvalidArguments(f"some chosen scopes belong to a provider other than {provider}")
    return scopes


@router.post("/connect")
async def connect(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    provider: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    picked = await _picked(request)
    try:
        scopes = _scopes_of(provider, picked)
        # Straight to hub.oauth (what /connect/{provider} calls): no CSRF token in a URL, errors inline.
        url = await hub.oauth.begin(provider=provider, name=name.strip(), scopes=scopes)
    except SwitchboardError as exc:
        form = {"provider": provider, "name": name, "scopes": picked}
        return await failed(request, hub, session_token, exc, section="connections", form_id="connect-form", form=form)
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


@router.post("/connections")
async def connect_api_key(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    provider: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
) -> Response:
    """A connection from a pasted API key. The key goes to the vault and nowhere else: an error re-render
    keeps the other fields and leaves the key blank, and no answer ever carries it."""
    name, key, picked = name.strip(), api_key.strip(), await _picked(request)
    try:
        scopes = _scopes_of(provider, picked)
        if not key:
            raise InvalidArguments("paste the API key")
        if len(key) > _MAX_API_KEY:
            raise InvalidArguments(f"that is not an API key: it is over {_MAX_API_KEY} characters long")
        await hub.db.run(
            lambda s: connect_with_api_key(s, hub.vault, provider=provider, name=name, api_key=key, scopes=scopes)
        )
    except SwitchboardError as exc:
        form = {"provider": provider, "name": name, "scopes": picked}  # never the key
        return await failed(request, hub, session_token, exc, section="connections", form_id="apikey-form", form=form)
    await hub.changed()
    if is_htmx(request):
        # The grant form lists connections too, so the agents section is refreshed alongside.
        return await show(
            request, hub, session_token, section="connections", status=201, connected=name, also=("agents",)
        )
    return RedirectResponse(f"/admin/?connected={quote(name)}#connections", status_code=303)


@router.post("/connections/{name}/revoke")
async def revoke(request: Request, name: str, hub: HubDep, session_token: SessionToken) -> Response:
    try:
        # Revoked at the provider too where it offers an endpoint, as /admin/api does; then forgotten here.
        await hub.revoke_connection(name)
    except SwitchboardError as exc:
        return await failed(request, hub, session_token, exc, section="connections", form_id="connections")
    # The grant form lists connections too, so the agents section is refreshed alongside.
    return await succeeded(
        request, hub, session_token, section="connections", done="connection-revoked", also=("agents",)
    )


# --- fragments and assets ------------------------------------------------------------------------------


@router.get("/sections/{name}")
async def section(request: Request, name: str, hub: HubDep, session_token: SessionToken) -> Response:
    """One section alone, for htmx to refresh (the Refresh buttons of approvals and the audit log)."""
    if name not in _SECTIONS:
        raise NotFound(f"no section {name!r}")
    if not is_htmx(request):
        return RedirectResponse(f"/admin/#{name}", status_code=303)
    return await show(request, hub, session_token, section=name)


@router.get("/grant-scopes")
async def grant_scopes(hub: HubDep, session_token: SessionToken, connection: str = "") -> Response:
    """The grant form's scope select narrowed to what `connection` was authorised for."""
    connections = await hub.db.run(lambda s: [ConnectionRead.of(c) for c in list_connections(s)])
    grantable = [c for c in connections if c.name == connection and c.status != "revoked"]
    return html("_grant_scopes.html", grantable=grantable, form={"scope": ""}, error=None)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    asset = STATIC.get(name)
    if asset is None:
        raise NotFound(f"no asset {name!r}")
    # Asset URLs carry a content hash (`?v=`), so they may be cached for as long as a browser likes.
    return Response(
        asset.body, media_type=asset.media_type, headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


router.include_router(policy_pages.router)
router.include_router(roster_pages.router)
router.include_router(activity_pages.router)
router.include_router(usage_pages.router)
