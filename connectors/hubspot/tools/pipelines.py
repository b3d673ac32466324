"""HubSpot deal pipelines and their stages: the ids a deal's `pipeline` and `dealstage` take.

No data label: pipeline and stage names are the account's sales process, not personal or financial data.
"""

from typing import Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.hubspot.client import HubSpotClient

__all__ = ["Pipeline", "PipelineList", "Stage", "hubspot_pipelines_list"]


class Stage(BaseModel):
    id: str = Field(description="The stage id deals take as `dealstage`.")
    label: str
    probability: float | None = Field(default=None, description="Win probability HubSpot assigns, 0 to 1.")
    is_closed: bool | None = Field(default=None, description="True for won and lost stages.")


class Pipeline(BaseModel):
    id: str = Field(description="The pipeline id deals take as `pipeline`.")
    label: str
    stages: list[Stage] = Field(description="In the order the pipeline shows them.")


class PipelineList(BaseModel):
    pipelines: list[Pipeline]


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(str(value).lower()) if value is not None else None


def _order(item: dict[str, Any]) -> tuple[float, str]:
    order = _float(item.get("displayOrder"))
    return (order if order is not None else float("inf"), str(item.get("label", "")))


def _stage(raw: dict[str, Any]) -> Stage:
    metadata = raw.get("metadata") or {}
    return Stage(
        id=str(raw["id"]),
        label=str(raw.get("label", "")),
        probability=_float(metadata.get("probability")),
        is_closed=_bool(metadata.get("isClosed")),
    )


@tool(scopes=["crm.deals.read"], resources={}, result_resources={"pipelines[].id": "pipelines"})
async def hubspot_pipelines_list(client: HubSpotClient) -> PipelineList:
    """List the account's deal pipelines with their stages, in display order.

    Use this before creating a deal or moving one to another stage: `pipeline` and `dealstage` take these
    ids, not the labels. Archived pipelines and stages are left out.
    """
    body = await client.call(client.pipelines.get_all, object_type="deals")
    pipelines = [p for p in body.get("results", []) if isinstance(p, dict) and not p.get("archived")]
    return PipelineList(
        pipelines=[
            Pipeline(
                id=str(p["id"]),
                label=str(p.get("label", "")),
                stages=[
                    _stage(s)
                    for s in sorted((p.get("stages") or []), key=_order)
                    if isinstance(s, dict) and not s.get("archived")
                ],
            )
            for p in sorted(pipelines, key=_order)
        ]
    )
