"""What the HubSpot tool modules share: argument types, the CRM search request, paging and property helpers."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.errors import ProviderRejected
from connectors.hubspot.client import HubSpotClient
from scopes import CallFacts, FactsNeeded

__all__ = [
    "ID_PATTERN",
    "After",
    "Limit",
    "OwnerId",
    "associated_ids",
    "association",
    "changes",
    "new_record_facts",
    "next_cursor",
    "require_changes",
    "search_objects",
]

# Record ids are digits: nothing else can reach a URL path from an agent's argument.
ID_PATTERN = r"^\d{1,20}$"

OwnerId = Annotated[
    str | None,
    Field(
        description="The HubSpot owner (user) id to assign, from hubspot_owners_list.",
        pattern=ID_PATTERN,
    ),
]
Limit = Annotated[int, Field(description="Results per page, 1 to 100.", ge=1, le=100)]
After = Annotated[str | None, Field(description="The `next_cursor` of the previous page.", max_length=100)]


def changes(**values: str | None) -> dict[str, str]:
    """The properties to send: those given, by HubSpot name."""
    return {name: value for name, value in values.items() if value is not None}


def require_changes(properties: Mapping[str, str]) -> None:
    if not properties:
        raise ProviderRejected("nothing to update: give at least one field")


async def new_record_facts(client: HubSpotClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The facts of a create: the one record it touches that no argument names is the record it makes, whose id
    HubSpot gives only once it exists. So `object_ids` stays unknown, and a grant listing record ids refuses
    the call (it may not add records); the records it is associated with are arguments, checked as such.
    Nothing is fetched."""
    return CallFacts()


def next_cursor(body: Mapping[str, Any]) -> str | None:
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def associated_ids(body: Mapping[str, Any], object_type: str) -> list[str]:
    """The ids a record is associated with, once each: HubSpot lists a labelled association twice."""
    results = ((body.get("associations") or {}).get(object_type) or {}).get("results") or []
    return list(dict.fromkeys(str(r["id"]) for r in results if isinstance(r, dict) and "id" in r))


def association(object_id: str, type_id: int) -> dict[str, Any]:
    """An association to send on create: to `object_id`, of HubSpot-defined type `type_id`."""
    return {
        "to": {"id": object_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


async def search_objects(
    client: HubSpotClient,
    do_search: Callable[..., Any],
    *,
    properties: Sequence[str],
    sort: str,
    query: str,
    limit: int,
    after: str | None,
    filters: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One page of a CRM objects search: free text plus `property == value` filters, sorted by `sort`."""
    # HubSpot's published spec requires all five keys and types `sorts` as strings ("-name": descending).
    request: dict[str, Any] = {
        "filterGroups": [],
        "sorts": [sort],
        "properties": list(properties),
        "limit": limit,
        "after": after or "0",
    }
    equal = [{"propertyName": name, "operator": "EQ", "value": value} for name, value in filters]
    if equal:
        request["filterGroups"] = [{"filters": equal}]
    if query:
        request["query"] = query
    body: dict[str, Any] = await client.call(do_search, public_object_search_request=request)
    return body
