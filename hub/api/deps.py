"""Request dependencies: the hub, the calling agent, the calling admin.

All `async def`: FastAPI runs a plain `def` dependency in a worker thread, a hop the hot path cannot afford
for what are in-memory lookups.
"""

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer
from fastapi.security.base import SecurityBase
from sqlalchemy.orm import Session

from hub.admin_auth import SESSION_COOKIE, check_api_token, csrf_valid, valid_session
from hub.credentials import hash_secret
from hub.errors import Forbidden, Unauthenticated
from hub.policy_cache import AgentPrincipal
from hub.runtime import Hub

__all__ = ["AdminDep", "AdminPrincipal", "AgentDep", "HubDep", "agent_from_authorization", "bearer"]

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def agent_from_authorization(hub: Hub, authorization: str | None) -> AgentPrincipal:
    """The agent whose key is presented, from the in-memory snapshot (no database round trip)."""
    key = bearer(authorization)
    if key is None:
        raise Unauthenticated("send the agent key as 'Authorization: Bearer sbk_…'")
    agent = hub.policy.snapshot.agent_for_key_hash(hash_secret(key))
    if agent is None:
        raise Unauthenticated("the agent key is unknown, revoked or expired")
    return agent


class _BearerScheme(SecurityBase):
    """A bearer-token scheme in the OpenAPI document whose instance is itself the dependency that checks the
    token, so declaring it adds no dependency for a request to resolve."""

    def __init__(self, name: str, description: str) -> None:
        self.model = HTTPBearer(description=description)
        self.scheme_name = name


class _AgentKey(_BearerScheme):
    async def __call__(self, request: Request) -> AgentPrincipal:
        return agent_from_authorization(request.app.state.hub, request.headers.get("authorization"))


current_agent = _AgentKey("agentKey", "An agent key, sbk_…, from the admin page or `switchboard agent create`.")
AgentDep = Annotated[AgentPrincipal, Depends(current_agent)]


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    via: str  # "token" or "session"
    session_token: str | None = None


class _AdminCredentials(_BearerScheme):
    async def __call__(self, request: Request) -> AdminPrincipal:
        return await _admin(request, request.app.state.hub)


async def _admin(request: Request, hub: Hub) -> AdminPrincipal:
    """An admin API token (bearer), or a page session cookie whose unsafe requests carry the CSRF token."""
    token = bearer(request.headers.get("authorization"))
    configured = hub.settings.admin_token.get_secret_value() if hub.settings.admin_token else None
    if token is not None:

        def known(session: Session) -> bool:
            return check_api_token(session, token, configured)

        if await hub.db.run(known):
            return AdminPrincipal("token")
        raise Unauthenticated("the admin token is unknown or revoked")
    cookie = request.cookies.get(SESSION_COOKIE)
    signed_in = bool(cookie) and await hub.db.run(partial(valid_session, token=cookie or ""))
    if cookie and signed_in:
        if request.method not in _SAFE_METHODS:
            presented = request.headers.get("x-csrf-token")
            if presented is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                presented = str((await request.form()).get("csrf_token") or "")
            if not csrf_valid(hub.secret_key, cookie, presented):
                raise Forbidden("missing or wrong CSRF token; reload the page and try again")
        return AdminPrincipal("session", cookie)
    raise Unauthenticated("sign in on the admin page, or send an admin token as 'Authorization: Bearer sba_…'")


current_admin = _AdminCredentials(
    "adminToken",
    "An admin API token, sba_…, from `switchboard admin token`. The admin page's session cookie also works, "
    "with its CSRF token in X-CSRF-Token on unsafe methods.",
)
AdminDep = Annotated[AdminPrincipal, Depends(current_admin)]
