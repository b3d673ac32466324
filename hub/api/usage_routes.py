"""Usage and cost over HTTP: runtimes report model tokens (`POST /v1/usage`, with the agent's key); admins
read usage and keep the price table (`/admin/api/usage`, `/admin/api/prices`)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from hub import usage as usage_service
from hub.api.deps import AdminDep, AgentDep, HubDep
from hub.api.problems import problem_responses
from hub.usage import MODEL_PATTERN, PERIODS, PriceRead, PriceWrite, UsageCreate

__all__ = ["router"]

router = APIRouter(responses=problem_responses(401))
ModelName = Annotated[str, Path(pattern=MODEL_PATTERN, description="The model's name, as its provider spells it.")]


@router.post(
    "/v1/usage",
    status_code=status.HTTP_201_CREATED,
    tags=["agents"],
    summary="Report model token usage",
    responses=problem_responses(400, 413, 422),
)
async def report_usage(body: UsageCreate, agent: AgentDep, hub: HubDep) -> dict[str, int | str]:
    """One model turn's tokens for the calling agent; the admin page turns them into cost."""
    report_id = await hub.db.run(lambda s: usage_service.record_usage(s, agent_id=agent.id, report=body))
    return {"id": report_id, "agent": agent.name, "model": body.model}


@router.get(
    "/admin/api/usage",
    tags=["admin"],
    summary="Calls by hour or day, per agent and tool, and cost",
    responses=problem_responses(422),
)
async def usage(
    _: AdminDep,
    hub: HubDep,
    period: Literal["hour", "day"] = "hour",
    agent: Annotated[str | None, Query(max_length=64)] = None,
    tool: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, object]:
    found = await hub.db.run(
        lambda s: usage_service.load_usage(s, period=PERIODS[period], agent=agent or None, tool=tool or None)
    )
    return found.to_dict()


@router.get("/admin/api/prices", tags=["admin"], summary="Model prices, USD per million tokens")
async def list_prices(_: AdminDep, hub: HubDep) -> list[PriceRead]:
    return await hub.db.run(usage_service.list_prices)


@router.get("/admin/api/prices/{model:path}", tags=["admin"], responses=problem_responses(404, 422))
async def get_price(model: ModelName, _: AdminDep, hub: HubDep) -> PriceRead:
    return await hub.db.run(lambda s: usage_service.get_price(s, model=model))


@router.put(
    "/admin/api/prices/{model:path}",
    tags=["admin"],
    summary="Set a model's price (201 when new)",
    # 404: a name with a line break matches no route at all.
    responses={201: {"model": PriceRead, "description": "Created"}, **problem_responses(400, 403, 404, 413, 422)},
)
async def put_price(model: ModelName, body: PriceWrite, response: Response, _: AdminDep, hub: HubDep) -> PriceRead:
    price, created = await hub.db.run(lambda s: usage_service.set_price(s, model=model, price=body))
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return price


@router.delete(
    "/admin/api/prices/{model:path}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["admin"],
    responses=problem_responses(403, 404, 422),
)
async def delete_price(model: ModelName, _: AdminDep, hub: HubDep) -> None:
    await hub.db.run(lambda s: usage_service.delete_price(s, model=model))
