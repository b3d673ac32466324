"""HubSpot companies: organisations, with their domain, industry, size and place.

No data label: a company's name, domain, switchboard phone and city describe an organisation, not a
person, and the owner is returned as an id only (hubspot_owners_list, labelled, turns it into a name).
"""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools._common import (
    ID_PATTERN,
    After,
    Limit,
    OwnerId,
    changes,
    new_record_facts,
    next_cursor,
    require_changes,
    search_objects,
)

__all__ = [
    "Company",
    "CompanyPage",
    "hubspot_companies_create",
    "hubspot_companies_get",
    "hubspot_companies_search",
    "hubspot_companies_update",
]

_PROPERTIES = [
    "name",
    "domain",
    "industry",
    "phone",
    "city",
    "state",
    "country",
    "numberofemployees",
    "hubspot_owner_id",
]

# The write tools' arguments that set properties (argument names: `employees` sets numberofemployees,
# `owner_id` sets hubspot_owner_id).
_WRITABLE = ("name", "domain", "industry", "phone", "city", "state", "country", "employees", "owner_id")

CompanyId = Annotated[str, Field(description="The HubSpot company id, e.g. '1001'.", pattern=ID_PATTERN)]
_DOMAIN = r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$"
Domain = Annotated[
    str | None,
    Field(
        description="The company's web domain, without scheme or path: 'example.com'.",
        max_length=253,
        pattern=_DOMAIN,
    ),
]
Industry = Annotated[
    str | None,
    Field(
        description="HubSpot's industry code in capitals, e.g. 'COMPUTER_SOFTWARE' or 'FINANCIAL_SERVICES'.",
        pattern=r"^[A-Z][A-Z_]{1,99}$",
    ),
]
Phone = Annotated[str | None, Field(description="The company's main phone number.", max_length=40)]
City = Annotated[str | None, Field(description="City.", max_length=100)]
State = Annotated[str | None, Field(description="State or region.", max_length=100)]
Country = Annotated[str | None, Field(description="Country, as a name: 'United Kingdom'.", max_length=100)]
Employees = Annotated[int | None, Field(description="Number of employees.", ge=0, le=10_000_000)]


class Company(BaseModel):
    id: str
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    phone: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    employees: int | None = None
    owner_id: str | None = Field(default=None, description="The owner's id; hubspot_owners_list names it.")
    updated_at: str | None = None


class CompanyPage(BaseModel):
    companies: list[Company]
    total: int | None = Field(default=None, description="How many companies match in all.")
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _company(obj: dict[str, Any]) -> Company:
    props = obj.get("properties") or {}
    return Company(
        id=str(obj["id"]),
        name=props.get("name") or None,
        domain=props.get("domain") or None,
        industry=props.get("industry") or None,
        phone=props.get("phone") or None,
        city=props.get("city") or None,
        state=props.get("state") or None,
        country=props.get("country") or None,
        employees=_int(props.get("numberofemployees")),
        owner_id=props.get("hubspot_owner_id") or None,
        updated_at=obj.get("updatedAt"),
    )


def _properties(
    *,
    name: str | None,
    domain: str | None,
    industry: str | None,
    phone: str | None,
    city: str | None,
    state: str | None,
    country: str | None,
    employees: int | None,
    owner_id: str | None,
) -> dict[str, str]:
    return changes(
        name=name,
        domain=domain.lower() if domain else domain,
        industry=industry,
        phone=phone,
        city=city,
        state=state,
        country=country,
        numberofemployees=None if employees is None else str(employees),
        hubspot_owner_id=owner_id,
    )


@tool(scopes=["crm.companies.read"], resources={}, result_resources={"companies[].id": "object_ids"}, limit="limit")
async def hubspot_companies_search(
    client: HubSpotClient,
    query: Annotated[
        str,
        Field(
            description="Free text matched against name, domain, website and phone; empty lists all.", max_length=200
        ),
    ] = "",
    limit: Limit = 10,
    after: After = None,
) -> CompanyPage:
    """Search HubSpot CRM companies by free text, most recently changed first.

    Use this to find an organisation's id before reading it, updating it, creating a deal for it or adding
    a note to it. Returns name, domain, industry, phone, place, size and owner id, and `next_cursor` when
    more results exist.
    """
    body = await search_objects(
        client,
        client.companies_search.do_search,
        properties=_PROPERTIES,
        sort="-hs_lastmodifieddate",
        query=query,
        limit=limit,
        after=after,
    )
    return CompanyPage(
        companies=[_company(o) for o in body.get("results", [])],
        total=body.get("total"),
        next_cursor=next_cursor(body),
    )


@tool(scopes=["crm.companies.read"], resources={"company_id": "object_ids"})
async def hubspot_companies_get(client: HubSpotClient, company_id: CompanyId) -> Company:
    """Get one HubSpot company by id, with name, domain, industry, phone, place, size and owner id."""
    body = await client.call(client.companies.get_by_id, company_id=company_id, properties=_PROPERTIES)
    return _company(body)


# A new record: refused under an `object_ids` allow-list unless the hub resolves it (see contacts).
@tool(
    scopes=["crm.companies.write"],
    resources={},
    resolved_resources=["object_ids"],
    facts=new_record_facts,
    sink=False,
    risk="low",
    properties=_WRITABLE,
)
async def hubspot_companies_create(
    client: HubSpotClient,
    name: Annotated[str, Field(description="The company's name.", min_length=1, max_length=200)],
    domain: Domain = None,
    industry: Industry = None,
    phone: Phone = None,
    city: City = None,
    state: State = None,
    country: Country = None,
    employees: Employees = None,
    owner_id: OwnerId = None,
) -> Company:
    """Create a HubSpot company. Search by name or domain first: HubSpot does not refuse duplicates."""
    properties = _properties(
        name=name,
        domain=domain,
        industry=industry,
        phone=phone,
        city=city,
        state=state,
        country=country,
        employees=employees,
        owner_id=owner_id,
    )
    body = await client.call(
        client.companies.create,
        simple_public_object_input_for_create={"properties": properties, "associations": []},
    )
    return _company(body)


@tool(
    scopes=["crm.companies.write"],
    resources={"company_id": "object_ids"},
    sink=False,
    risk="low",
    properties=_WRITABLE,
)
async def hubspot_companies_update(
    client: HubSpotClient,
    company_id: CompanyId,
    name: Annotated[str | None, Field(description="New name.", min_length=1, max_length=200)] = None,
    domain: Domain = None,
    industry: Industry = None,
    phone: Phone = None,
    city: City = None,
    state: State = None,
    country: Country = None,
    employees: Employees = None,
    owner_id: OwnerId = None,
) -> Company:
    """Update fields of one HubSpot company; fields left out keep their value."""
    properties = _properties(
        name=name,
        domain=domain,
        industry=industry,
        phone=phone,
        city=city,
        state=state,
        country=country,
        employees=employees,
        owner_id=owner_id,
    )
    require_changes(properties)
    body = await client.call(
        client.companies.update, company_id=company_id, simple_public_object_input={"properties": properties}
    )
    return _company(body)
