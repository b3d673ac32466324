"""HubSpot deals: sales opportunities with an amount, a pipeline stage and a close date.

Labelled `financial`: a deal's amount is commercial data an admin may want to keep from some sinks.
"""

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.errors import ProviderNotFound
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools._common import (
    ID_PATTERN,
    After,
    Limit,
    OwnerId,
    associated_ids,
    association,
    changes,
    new_record_facts,
    next_cursor,
    require_changes,
    search_objects,
)
from scopes import CallFacts, FactsNeeded

__all__ = [
    "Deal",
    "DealPage",
    "hubspot_deals_create",
    "hubspot_deals_get",
    "hubspot_deals_search",
    "hubspot_deals_update",
]

_PROPERTIES = ["dealname", "amount", "pipeline", "dealstage", "closedate", "hubspot_owner_id"]
_LABELS = ("financial",)
# The write tools' arguments that set properties (`owner_id` sets hubspot_owner_id); company_id and
# contact_id are associations, checked against `object_ids` instead.
_WRITABLE = ("dealname", "dealstage", "pipeline", "amount", "closedate", "owner_id")
# HubSpot-defined association types (hubspot.crm.association_type): the deal's primary company, a contact.
_DEAL_TO_COMPANY = 5
_DEAL_TO_CONTACT = 3

DealId = Annotated[str, Field(description="The HubSpot deal id, e.g. '1010'.", pattern=ID_PATTERN)]
_STAGE_OR_PIPELINE = r"^[A-Za-z0-9_-]{1,100}$"
DealName = Annotated[str | None, Field(description="New deal name.", min_length=1, max_length=200)]
Amount = Annotated[
    float | None, Field(description="The deal's value in the account's currency, e.g. 12000.50.", ge=0, le=1e13)
]
Pipeline = Annotated[
    str | None,
    Field(
        description="A pipeline id from hubspot_pipelines_list; 'default' is the standard one.",
        pattern=_STAGE_OR_PIPELINE,
    ),
]
Stage = Annotated[
    str | None,
    Field(
        description="A stage id of the deal's pipeline, from hubspot_pipelines_list, e.g. 'qualifiedtobuy'.",
        pattern=_STAGE_OR_PIPELINE,
    ),
]
CloseDate = Annotated[date | None, Field(description="Expected or actual close date, YYYY-MM-DD.")]


class Deal(BaseModel):
    id: str
    dealname: str | None = None
    amount: float | None = None
    pipeline: str | None = None
    dealstage: str | None = Field(default=None, description="Stage id; hubspot_pipelines_list names it.")
    closedate: str | None = Field(default=None, description="YYYY-MM-DD.")
    owner_id: str | None = Field(default=None, description="The owner's id; hubspot_owners_list names it.")
    company_ids: list[str] | None = Field(default=None, description="Associated companies (get and create only).")
    contact_ids: list[str] | None = Field(default=None, description="Associated contacts (get and create only).")
    updated_at: str | None = None


class DealPage(BaseModel):
    deals: list[Deal]
    total: int | None = Field(default=None, description="How many deals match in all.")
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def _amount(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _deal(obj: dict[str, Any], *, with_associations: bool = False) -> Deal:
    props = obj.get("properties") or {}
    closedate = props.get("closedate") or None
    return Deal(
        id=str(obj["id"]),
        dealname=props.get("dealname") or None,
        amount=_amount(props.get("amount")),
        pipeline=props.get("pipeline") or None,
        dealstage=props.get("dealstage") or None,
        closedate=closedate[:10] if isinstance(closedate, str) else None,
        owner_id=props.get("hubspot_owner_id") or None,
        company_ids=associated_ids(obj, "companies") if with_associations else None,
        contact_ids=associated_ids(obj, "contacts") if with_associations else None,
        updated_at=obj.get("updatedAt"),
    )


def _money(amount: float | None) -> str | None:
    """HubSpot stores amounts as decimal strings: 12000.5 -> "12000.5", 12000.0 -> "12000"."""
    return None if amount is None else f"{amount:.2f}".rstrip("0").rstrip(".")


def _midnight(day: date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00.000Z"


@tool(
    scopes=["crm.deals.read"],
    labels=_LABELS,
    resources={"pipeline": "pipelines"},
    result_resources={"deals[].id": "object_ids", "deals[].pipeline": "pipelines"},
    limit="limit",
    label_fields={"financial": ["deals[].amount"]},
)
async def hubspot_deals_search(
    client: HubSpotClient,
    query: Annotated[
        str,
        Field(description="Free text matched against the deal name and description; empty lists all.", max_length=200),
    ] = "",
    pipeline: Annotated[
        str | None, Field(description="Only deals in this pipeline id.", pattern=_STAGE_OR_PIPELINE)
    ] = None,
    dealstage: Annotated[
        str | None, Field(description="Only deals in this stage id, e.g. 'closedwon'.", pattern=_STAGE_OR_PIPELINE)
    ] = None,
    limit: Limit = 10,
    after: After = None,
) -> DealPage:
    """Search HubSpot CRM deals by free text, pipeline and stage, most recently changed first.

    Use this to find a deal's id, or to list the deals at one stage (e.g. dealstage='contractsent').
    Returns name, amount, pipeline, stage id, close date and owner id, and `next_cursor` when more exist.
    """
    filters = [(name, value) for name, value in (("pipeline", pipeline), ("dealstage", dealstage)) if value]
    body = await search_objects(
        client,
        client.deals_search.do_search,
        properties=_PROPERTIES,
        sort="-hs_lastmodifieddate",
        query=query,
        limit=limit,
        after=after,
        filters=filters,
    )
    return DealPage(
        deals=[_deal(o) for o in body.get("results", [])],
        total=body.get("total"),
        next_cursor=next_cursor(body),
    )


async def _pipeline_facts(client: HubSpotClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The pipeline the deal is in now (its `pipeline` property), whatever pipeline the arguments move it to: a
    deal the grant may not see may not be read or moved out. A deal HubSpot does not have leaves it unknown."""
    if "pipelines" not in needed.resources:
        return CallFacts()
    deal_id = arguments.model_dump()["deal_id"]
    try:
        body = await client.call(client.deals.get_by_id, deal_id=deal_id, properties=["pipeline"])
    except ProviderNotFound:
        return CallFacts()
    pipeline = (body.get("properties") or {}).get("pipeline")
    return CallFacts(resources={"pipelines": [str(pipeline)]}) if pipeline else CallFacts()


# A deal's pipeline is known only to HubSpot: under a `pipelines` allow-list the hub must resolve it (the
# deal's `pipeline` property) or the call is refused. Its associations are filtered to the allowed ids.
@tool(
    scopes=["crm.deals.read"],
    labels=_LABELS,
    resources={"deal_id": "object_ids"},
    resolved_resources=["pipelines"],
    facts=_pipeline_facts,
    result_resources={"company_ids[]": "object_ids", "contact_ids[]": "object_ids"},
    label_fields={"financial": ["amount"]},
)
async def hubspot_deals_get(client: HubSpotClient, deal_id: DealId) -> Deal:
    """Get one HubSpot deal by id: name, amount, pipeline, stage, close date, owner, and the ids of its
    associated companies and contacts."""
    body = await client.call(
        client.deals.get_by_id, deal_id=deal_id, properties=_PROPERTIES, associations=["companies", "contacts"]
    )
    return _deal(body, with_associations=True)


# A new record: refused under an `object_ids` allow-list unless the hub resolves it (see contacts); the
# records it is associated with and its pipeline are checked from the arguments. The amount is in whole
# units of the account's currency, which no argument names (the hub may resolve it for `currency`).
@tool(
    scopes=["crm.deals.write"],
    labels=_LABELS,
    resources={"pipeline": "pipelines", "company_id": "object_ids", "contact_id": "object_ids"},
    resolved_resources=["object_ids"],
    facts=new_record_facts,
    sink=False,
    risk="low",
    amount="amount",
    amount_unit="major",
    properties=_WRITABLE,
    label_fields={"financial": ["amount"]},
)
async def hubspot_deals_create(
    client: HubSpotClient,
    dealname: Annotated[
        str, Field(description="The deal's name, e.g. 'Acme - annual plan'.", min_length=1, max_length=200)
    ],
    dealstage: Annotated[
        str,
        Field(
            description="The stage id to start in, from hubspot_pipelines_list, e.g. 'appointmentscheduled'.",
            pattern=_STAGE_OR_PIPELINE,
        ),
    ],
    pipeline: Annotated[
        str,
        Field(
            description="The pipeline id the stage belongs to, from hubspot_pipelines_list.", pattern=_STAGE_OR_PIPELINE
        ),
    ] = "default",
    amount: Amount = None,
    closedate: CloseDate = None,
    owner_id: OwnerId = None,
    company_id: Annotated[
        str | None, Field(description="Associate the deal with this company id.", pattern=ID_PATTERN)
    ] = None,
    contact_id: Annotated[
        str | None, Field(description="Associate the deal with this contact id.", pattern=ID_PATTERN)
    ] = None,
) -> Deal:
    """Create a HubSpot deal in a pipeline stage, optionally for a company and a contact.

    Call hubspot_pipelines_list first for valid pipeline and stage ids.
    """
    properties = changes(
        dealname=dealname,
        dealstage=dealstage,
        pipeline=pipeline,
        amount=_money(amount),
        closedate=_midnight(closedate),
        hubspot_owner_id=owner_id,
    )
    associations = []
    if company_id:
        associations.append(association(company_id, _DEAL_TO_COMPANY))
    if contact_id:
        associations.append(association(contact_id, _DEAL_TO_CONTACT))
    body = await client.call(
        client.deals.create,
        simple_public_object_input_for_create={"properties": properties, "associations": associations},
    )
    deal = _deal(body)
    deal.company_ids = [company_id] if company_id else []
    deal.contact_ids = [contact_id] if contact_id else []
    return deal


# Both the pipeline it moves to (argument) and the one it is in (resolved by the hub) must be allowed.
@tool(
    scopes=["crm.deals.write"],
    labels=_LABELS,
    resources={"deal_id": "object_ids", "pipeline": "pipelines"},
    resolved_resources=["pipelines"],
    facts=_pipeline_facts,
    sink=False,
    risk="low",
    amount="amount",
    amount_unit="major",
    properties=_WRITABLE,
    label_fields={"financial": ["amount"]},
)
async def hubspot_deals_update(
    client: HubSpotClient,
    deal_id: DealId,
    dealname: DealName = None,
    dealstage: Stage = None,
    pipeline: Pipeline = None,
    amount: Amount = None,
    closedate: CloseDate = None,
    owner_id: OwnerId = None,
) -> Deal:
    """Update fields of one HubSpot deal, e.g. move it to another stage; fields left out keep their value.

    Moving a deal to a stage of another pipeline needs both `pipeline` and `dealstage`.
    """
    properties = changes(
        dealname=dealname,
        dealstage=dealstage,
        pipeline=pipeline,
        amount=_money(amount),
        closedate=_midnight(closedate),
        hubspot_owner_id=owner_id,
    )
    require_changes(properties)
    body = await client.call(
        client.deals.update, deal_id=deal_id, simple_public_object_input={"properties": properties}
    )
    return _deal(body)
