"""The admin API under /admin/api: the same actions as the admin page, as JSON, for automation."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import StreamingResponse

from connectors import TOOLS
from hub import activity, approvals
from hub import agents as agent_service
from hub.activity import FilterParams
from hub.api.deps import AdminDep, HubDep
from hub.api.params import RowId
from hub.api.problems import problem_responses
from hub.audit import latest, verify
from hub.connections import connect_with_api_key, list_connections
from hub.errors import Conflict, InvalidArguments, NotFound, UnknownTool
from hub.models import Agent, Grant, utcnow
from hub.runtime import Hub
from hub.schemas import (
    AgentCreate,
    AgentCreated,
    AgentRead,
    AgentUpdate,
    ApiKeyConnect,
    ApprovalDecision,
    ApprovalLinkCreate,
    ConnectionRead,
    ExplainRequest,
    FlowRuleCreate,
    FlowRuleRead,
    GrantCreate,
    GrantRead,
    KeyCreate,
)
from scopes import decide

__all__ = ["decide_call", "explain_call", "router"]

# Unsafe methods also declare 403 (a page session's request without its CSRF token); routes with a body 400 (a
# body that is not UTF-8; JSON that does not parse is 422, like any other schema mismatch) and 413 (over
# hub.api.body_limit's limit).
router = APIRouter(prefix="/admin/api", tags=["admin"], responses=problem_responses(401))
_EXPORTS = {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}


@router.get("/agents")
async def list_agents(_: AdminDep, hub: HubDep) -> list[AgentRead]:
    return await hub.db.run(lambda s: [AgentRead.of(a) for a in s.scalars(select(Agent).order_by(Agent.name))])


@router.post("/agents", status_code=status.HTTP_201_CREATED, responses=problem_responses(400, 403, 409, 413, 422))
async def create_agent(body: AgentCreate, _: AdminDep, hub: HubDep) -> AgentCreated:
    def create(session: Session) -> AgentCreated:
        agent, key = agent_service.create_agent(session, **body.model_dump())
        session.flush()
        session.refresh(agent)
        return AgentCreated(agent=AgentRead.of(agent), key=key)

    created = await hub.db.run(create)
    await hub.changed()
    return created


@router.get("/agents/{name}", responses=problem_responses(404))
async def get_agent(name: str, _: AdminDep, hub: HubDep) -> AgentRead:
    return await hub.db.run(lambda s: AgentRead.of(agent_service.get_agent(s, name=name)))


@router.delete("/agents/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404))
async def disable_agent(name: str, _: AdminDep, hub: HubDep) -> None:
    await hub.db.run(lambda s: agent_service.disable_agent(s, agent=agent_service.get_agent(s, name=name)))
    await hub.changed()


@router.patch("/agents/{name}", responses=problem_responses(400, 403, 404, 413, 422))
async def update_agent(name: str, body: AgentUpdate, _: AdminDep, hub: HubDep) -> AgentRead:
    def update(session: Session) -> AgentRead:
        agent = agent_service.get_agent(session, name=name)
        agent_service.update_agent(session, agent=agent, **body.model_dump(exclude_none=True))
        return AgentRead.of(agent)

    updated = await hub.db.run(update)
    await hub.changed()
    return updated


@router.post(
    "/agents/{name}/flow-rules",
    status_code=status.HTTP_201_CREATED,
    summary="Allow label → sink",
    responses=problem_responses(400, 403, 404, 413, 422),
)
async def add_flow_rule(name: str, body: FlowRuleCreate, _: AdminDep, hub: HubDep) -> FlowRuleRead:
    def add(session: Session) -> FlowRuleRead:
        agent = agent_service.get_agent(session, name=name)
        rule = agent_service.add_flow_rule(session, agent=agent, label=body.label, target=body.target)
        return FlowRuleRead.model_validate(rule, from_attributes=True)

    created = await hub.db.run(add)
    await hub.changed()
    return created


@router.delete(
    "/agents/{name}/flow-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 422),
)
async def remove_flow_rule(name: str, rule_id: RowId, _: AdminDep, hub: HubDep) -> None:
    await hub.db.run(
        lambda s: agent_service.remove_flow_rule(s, agent=agent_service.get_agent(s, name=name), rule_id=rule_id)
    )
    await hub.changed()


@router.post(
    "/agents/{name}/keys", status_code=status.HTTP_201_CREATED, responses=problem_responses(400, 403, 404, 413, 422)
)
async def create_key(name: str, body: KeyCreate, _: AdminDep, hub: HubDep) -> dict[str, str]:
    key = await hub.db.run(
        lambda s: agent_service.create_key(s, agent=agent_service.get_agent(s, name=name), expires_at=body.expires_at)
    )
    await hub.changed()
    return {"key": key}


@router.delete(
    "/agents/{name}/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(403, 404, 422),
)
async def revoke_key(name: str, key_id: RowId, _: AdminDep, hub: HubDep) -> None:
    await hub.db.run(lambda s: agent_service.revoke_key(s, agent=agent_service.get_agent(s, name=name), key_id=key_id))
    await hub.changed()


@router.get("/connections")
async def connections(_: AdminDep, hub: HubDep) -> list[ConnectionRead]:
    return await hub.db.run(lambda s: [ConnectionRead.of(c) for c in list_connections(s)])


@router.post(
    "/connections",
    status_code=status.HTTP_201_CREATED,
    summary="Connect with a pasted API key",
    responses=problem_responses(400, 403, 404, 413, 422),
)
async def connect_api_key(body: ApiKeyConnect, _: AdminDep, hub: HubDep) -> ConnectionRead:
    connection = await hub.db.run(
        lambda s: ConnectionRead.of(
            connect_with_api_key(
                s,
                hub.vault,
                provider=body.provider,
                name=body.name,
                api_key=body.api_key.get_secret_value(),
                scopes=body.scopes,
            )
        )
    )
    await hub.changed()
    return connection


@router.delete("/connections/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404))
async def revoke(name: str, _: AdminDep, hub: HubDep) -> None:
    await hub.revoke_connection(name)


@router.get("/grants")
async def list_grants(_: AdminDep, hub: HubDep) -> list[GrantRead]:
    return await hub.db.run(lambda s: [GrantRead.of(g) for g in s.scalars(select(Grant).order_by(Grant.id))])


@router.post("/grants", status_code=status.HTTP_201_CREATED, responses=problem_responses(400, 403, 404, 409, 413, 422))
async def add_grant(body: GrantCreate, _: AdminDep, hub: HubDep) -> GrantRead:
    def grant(session: Session) -> GrantRead:
        created = agent_service.add_grant(
            session,
            agent=agent_service.get_agent(session, name=body.agent),
            connection=agent_service.get_connection(session, name=body.connection),
            scope=body.scope,
            constraints=body.constraints,
        )
        session.refresh(created)
        return GrantRead.of(created)

    result = await hub.db.run(grant)
    await hub.changed()
    return result


@router.delete("/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(403, 404, 422))
async def remove_grant(grant_id: RowId, _: AdminDep, hub: HubDep) -> None:
    def remove(session: Session) -> None:
        grant = session.get(Grant, grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        agent_service.remove_grant(session, agent=grant.agent, connection=grant.connection, scope=grant.scope)

    await hub.db.run(remove)
    await hub.changed()


@router.get(
    "/audit",
    summary="Audit records, filtered; or all of them as CSV or JSON lines",
    responses={200: {"content": _EXPORTS}, **problem_responses(422)},
)
async def audit(
    _: AdminDep,
    hub: HubDep,
    filters: Annotated[FilterParams, Depends()],
    limit: int = Query(default=50, ge=1, le=1000),
    before: int | None = Query(default=None, ge=1, description="Only records older than this seq (paging)."),
    format: Literal["csv", "json"] | None = Query(
        default=None, description="Stream every matching record (chain order) as CSV or JSON lines."
    ),
) -> Any:
    """Without `format`: up to `limit` matching records, newest first. Filters as on the Activity page."""
    wanted = filters.parse()
    if format is not None:
        found = activity.export(hub.db, wanted, format=format)
        return StreamingResponse(found.body, media_type=found.media_type, headers=found.headers)
    if not wanted.active and before is None:
        return await hub.db.run(lambda s: latest(s, limit=limit))
    listed = await hub.db.run(lambda s: activity.page(s, wanted, before=before, limit=limit))
    return [{k: v for k, v in row.items() if k != "held"} for row in listed.rows]


@router.get("/audit/verify")
async def audit_verify(_: AdminDep, hub: HubDep) -> dict[str, Any]:
    intact, count, problem = await hub.db.run(verify)
    return {"intact": intact, "records": count, "problem": problem or None}


@router.post(
    "/explain",
    summary="What policy would decide for a call, without calling the provider",
    responses=problem_responses(400, 403, 404, 413, 422),
)
async def explain(body: ExplainRequest, _: AdminDep, hub: HubDep) -> dict[str, Any]:
    return await explain_call(
        hub,
        agent=body.agent,
        tool=body.tool,
        connection=body.connection,
        arguments=body.arguments,
        session=body.session,
    )


@router.get("/approvals", summary="Calls waiting for (or decided by) a human", responses=problem_responses(422))
async def list_approvals(
    _: AdminDep,
    hub: HubDep,
    status_: str | None = Query(
        default="pending", alias="status", pattern="^(pending|approved|running|done|failed|denied|expired|all)$"
    ),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    wanted = None if status_ == "all" else status_
    views = await hub.db.run(lambda s: approvals.listing(s, hub.vault, status=wanted, limit=limit))
    return [v.to_dict() for v in views]


@router.get("/approvals/{call_id}", responses=problem_responses(404))
async def get_approval(call_id: str, _: AdminDep, hub: HubDep) -> dict[str, Any]:
    return await hub.db.run(lambda s: approvals.view(approvals.get(s, call_id), hub.vault).to_dict())


@router.post(
    "/approvals/{call_id}",
    summary="Approve or deny a waiting call, once",
    responses=problem_responses(400, 403, 404, 409, 413, 422),
)
async def decide_approval(call_id: str, body: ApprovalDecision, admin: AdminDep, hub: HubDep) -> dict[str, Any]:
    return await decide_call(hub, call_id, approve=body.approve, by=f"admin ({admin.via})")


@router.post(
    "/approvals/{call_id}/link",
    status_code=status.HTTP_201_CREATED,
    summary="A one-time approval link",
    responses=problem_responses(400, 403, 404, 409, 413, 422),
)
async def approval_link(call_id: str, body: ApprovalLinkCreate, _: AdminDep, hub: HubDep) -> dict[str, str]:
    found = await hub.db.run(lambda s: approvals.view(approvals.get(s, call_id), hub.vault))
    if found.status != "pending":
        raise Conflict(f"call {call_id} is {found.status}, no longer pending")
    ttl = max(60.0, (found.expires_at - utcnow()).total_seconds())
    token = approvals.link_token(hub.secret_key, call_id=call_id, approver=body.approver, ttl=ttl)
    return {"url": f"{hub.settings.base_url.rstrip('/')}/approve/{token}", "approver": body.approver}


async def decide_call(hub: Hub, call_id: str, *, approve: bool, by: str) -> dict[str, Any]:
    """Record a human's decision (the first wins); an approved call then runs at once on this replica."""
    decided = await hub.db.run(lambda s: approvals.decide(s, call_id=call_id, approve=approve, by=by))
    if decided == "approved":
        hub.approved.set()
    return {"call_id": call_id, "status": decided}


async def explain_call(
    hub: Hub, *, agent: str, tool: str, connection: str | None, arguments: Any, session: str | None
) -> dict[str, Any]:
    """What policy would decide for `agent` calling `tool` now: the scope check first, then every rule."""
    principal = hub.policy.snapshot.agent_named(agent)
    if principal is None:
        raise NotFound(f"no active agent named {agent!r}")
    found = TOOLS.get(tool)
    if found is None:
        raise UnknownTool(f"no tool named {tool!r}")
    scope_only = decide(
        tool=found.name, provider=found.provider, needed=found.scopes, grants=principal.grants, connection=connection
    )
    if not scope_only.allowed or scope_only.connection is None:
        return scope_only.to_dict()
    try:
        return await hub.calls.explain(principal, found, scope_only.connection, arguments, session)
    except InvalidArguments as exc:
        return {"outcome": "deny", "reason": exc.code, "detail": exc.detail, **exc.extra}
