"""HubSpot owners: the account's users that contacts, companies and deals are assigned to.

Labelled `pii.email` and `pii.name`: an owner is a member of staff, identified by name and email.
"""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools._common import After, Limit, next_cursor

__all__ = ["Owner", "OwnerPage", "hubspot_owners_list"]


class Owner(BaseModel):
    id: str = Field(description="The id records take as `owner_id`.")
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    teams: list[str] = Field(default_factory=list, description="Team names, the primary team first.")


class OwnerPage(BaseModel):
    owners: list[Owner]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def _owner(raw: dict[str, Any]) -> Owner:
    teams = [t for t in raw.get("teams") or [] if isinstance(t, dict) and t.get("name")]
    teams.sort(key=lambda t: not t.get("primary"))  # stable: the primary team first, the rest as given
    return Owner(
        id=str(raw["id"]),
        email=raw.get("email") or None,
        firstname=raw.get("firstName") or None,
        lastname=raw.get("lastName") or None,
        teams=[str(t["name"]) for t in teams][:20],
    )


# Owners are the account's users, not CRM records: no allow-list applies.
@tool(
    scopes=["crm.owners.read"],
    labels=["pii.email", "pii.name"],
    resources={},
    limit="limit",
    label_fields={"pii.email": ["owners[].email"], "pii.name": ["owners[].firstname", "owners[].lastname"]},
)
async def hubspot_owners_list(
    client: HubSpotClient,
    email: Annotated[
        str | None,
        Field(
            description="Only the owner with this email address.",
            max_length=254,
            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        ),
    ] = None,
    limit: Limit = 50,
    after: After = None,
) -> OwnerPage:
    """List the HubSpot users that records can be assigned to, with id, name, email and teams.

    Use this to turn an `owner_id` on a company or deal into a person, or to find the id to assign a
    record to someone (pass `email` to look one person up).
    """
    kwargs: dict[str, Any] = {"limit": limit, "archived": False}
    if email:
        kwargs["email"] = email
    if after:
        kwargs["after"] = after
    body = await client.call(client.owners.get_page, **kwargs)
    return OwnerPage(
        owners=[_owner(o) for o in body.get("results", []) if isinstance(o, dict) and "id" in o],
        next_cursor=next_cursor(body),
    )
