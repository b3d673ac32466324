"""Connecting provider accounts: start at /connect/{provider}, come back at /oauth/callback."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse

from hub.admin_auth import csrf_valid
from hub.api.deps import AdminDep, HubDep
from hub.api.problems import problem_responses
from hub.errors import Forbidden

__all__ = ["router"]

router = APIRouter(tags=["oauth"])


@router.get(
    "/connect/{provider}",
    summary="Start connecting a provider account",
    status_code=302,
    responses={
        302: {"description": "To the provider's consent page"},
        **problem_responses(400, 401, 403, 404, 422),
    },
    response_class=RedirectResponse,
)
async def connect(
    provider: str,
    admin: AdminDep,
    hub: HubDep,
    name: Annotated[str, Query(max_length=64, description="The new connection's name")],
    scopes: Annotated[str, Query(max_length=2000, description="Hub scopes, comma-separated")],
    csrf_token: Annotated[str | None, Query(max_length=128)] = None,
) -> RedirectResponse:
    # A page session must prove the request came from the admin page: a GET from another site would
    # otherwise start a connection the admin never asked for.
    if admin.via == "session" and not csrf_valid(hub.secret_key, admin.session_token or "", csrf_token):
        raise Forbidden("missing or wrong CSRF token; start from the admin page")
    chosen = [s.strip() for s in scopes.split(",") if s.strip()]
    url = await hub.oauth.begin(provider=provider, name=name, scopes=chosen)
    return RedirectResponse(url, status_code=302)


@router.get(
    "/oauth/callback",
    summary="Where the provider sends the admin back",
    status_code=303,
    responses={303: {"description": "To the admin page"}, **problem_responses(400, 422, 502)},
    response_class=RedirectResponse,
)
async def callback(
    hub: HubDep,
    state: Annotated[str | None, Query(max_length=200)] = None,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    # The state alone ties this request to the admin's connect: no session is needed or trusted here.
    connection = await hub.oauth.complete(state=state, code=code, error=error)
    await hub.changed()
    return RedirectResponse(f"/admin/?connected={quote(connection.name)}", status_code=303)
