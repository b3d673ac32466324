"""HubSpot contacts: people, with their email, phone and name (all personal data)."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools._common import (
    ID_PATTERN,
    changes,
    new_record_facts,
    next_cursor,
    require_changes,
    search_objects,
)

__all__ = [
    "Contact",
    "ContactPage",
    "hubspot_contacts_create",
    "hubspot_contacts_get",
    "hubspot_contacts_search",
    "hubspot_contacts_update",
]

_CONTACT_PROPERTIES = ["email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage"]
_CONTACT_LABELS = ("pii.email", "pii.phone", "pii.name")
# Every argument of the write tools except the record id sets the HubSpot property of the same name.
_CREATE_PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "jobtitle")
_UPDATE_PROPERTIES = (*_CREATE_PROPERTIES, "lifecyclestage")


def _contact_fields(prefix: str = "") -> dict[str, list[str]]:
    """Where a result holds each label's data (`prefix` is the path of the list holding contacts)."""
    return {
        "pii.email": [f"{prefix}email"],
        "pii.phone": [f"{prefix}phone"],
        "pii.name": [f"{prefix}firstname", f"{prefix}lastname"],
    }


ContactId = Annotated[str, Field(description="The HubSpot contact id, e.g. '51'.", pattern=ID_PATTERN)]
Email = Annotated[
    str,
    Field(description="Email address.", max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]


class Contact(BaseModel):
    id: str
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    phone: str | None = None
    company: str | None = None
    jobtitle: str | None = None
    lifecyclestage: str | None = None
    updated_at: str | None = None


class ContactPage(BaseModel):
    contacts: list[Contact]
    total: int | None = Field(default=None, description="How many contacts match in all.")
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def _contact(obj: dict[str, Any]) -> Contact:
    props = obj.get("properties") or {}
    return Contact(
        id=str(obj["id"]),
        updated_at=obj.get("updatedAt"),
        **{name: props.get(name) or None for name in _CONTACT_PROPERTIES},
    )


@tool(
    scopes=["crm.contacts.read"],
    labels=_CONTACT_LABELS,
    resources={},
    result_resources={"contacts[].id": "object_ids"},
    limit="limit",
    label_fields=_contact_fields("contacts[]."),
)
async def hubspot_contacts_search(
    client: HubSpotClient,
    query: Annotated[
        str,
        Field(
            description="Free text matched against name, email, phone and company; empty lists all.",
            max_length=200,
        ),
    ] = "",
    limit: Annotated[int, Field(description="Contacts per page, 1 to 100.", ge=1, le=100)] = 10,
    after: Annotated[str | None, Field(description="The `next_cursor` of the previous page.", max_length=100)] = None,
) -> ContactPage:
    """Search HubSpot CRM contacts by free text, newest first.

    Use this to find a person before reading or updating them. Returns id, name, email, phone, company,
    job title and lifecycle stage, and `next_cursor` when more results exist.
    """
    body = await search_objects(
        client,
        client.contacts_search.do_search,
        properties=_CONTACT_PROPERTIES,
        sort="-lastmodifieddate",  # contacts name it so; other objects say hs_lastmodifieddate
        query=query,
        limit=limit,
        after=after,
    )
    return ContactPage(
        contacts=[_contact(o) for o in body.get("results", [])],
        total=body.get("total"),
        next_cursor=next_cursor(body),
    )


@tool(
    scopes=["crm.contacts.read"],
    labels=_CONTACT_LABELS,
    resources={"contact_id": "object_ids"},
    label_fields=_contact_fields(),
)
async def hubspot_contacts_get(client: HubSpotClient, contact_id: ContactId) -> Contact:
    """Get one HubSpot contact by id, with name, email, phone, company, job title and lifecycle stage."""
    body = await client.call(client.contacts.get_by_id, contact_id=contact_id, properties=_CONTACT_PROPERTIES)
    return _contact(body)


# Creating makes a record whose id only HubSpot knows: under an `object_ids` allow-list the call is refused
# unless the hub resolves it (a grant limited to listed records may not add others). Writes that stay in the
# CRM are no sink: the data stays where staff already see it.
@tool(
    scopes=["crm.contacts.write"],
    labels=_CONTACT_LABELS,
    resources={},
    resolved_resources=["object_ids"],
    facts=new_record_facts,
    sink=False,
    risk="low",
    properties=_CREATE_PROPERTIES,
    label_fields=_contact_fields(),
)
async def hubspot_contacts_create(
    client: HubSpotClient,
    email: Email,
    firstname: Annotated[str | None, Field(description="First name.", max_length=100)] = None,
    lastname: Annotated[str | None, Field(description="Last name.", max_length=100)] = None,
    phone: Annotated[str | None, Field(description="Phone number, ideally in E.164 form.", max_length=40)] = None,
    company: Annotated[str | None, Field(description="Company name as free text.", max_length=200)] = None,
    jobtitle: Annotated[str | None, Field(description="Job title.", max_length=200)] = None,
) -> Contact:
    """Create a HubSpot contact. Search first: HubSpot refuses a second contact with the same email."""
    properties = changes(
        email=email, firstname=firstname, lastname=lastname, phone=phone, company=company, jobtitle=jobtitle
    )
    body = await client.call(
        client.contacts.create,
        simple_public_object_input_for_create={"properties": properties, "associations": []},
    )
    return _contact(body)


@tool(
    scopes=["crm.contacts.write"],
    labels=_CONTACT_LABELS,
    resources={"contact_id": "object_ids"},
    sink=False,
    risk="low",
    properties=_UPDATE_PROPERTIES,
    label_fields=_contact_fields(),
)
async def hubspot_contacts_update(
    client: HubSpotClient,
    contact_id: ContactId,
    email: Annotated[
        str | None,
        Field(description="New email address.", max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    ] = None,
    firstname: Annotated[str | None, Field(description="New first name.", max_length=100)] = None,
    lastname: Annotated[str | None, Field(description="New last name.", max_length=100)] = None,
    phone: Annotated[str | None, Field(description="New phone number.", max_length=40)] = None,
    company: Annotated[str | None, Field(description="New company name.", max_length=200)] = None,
    jobtitle: Annotated[str | None, Field(description="New job title.", max_length=200)] = None,
    lifecyclestage: Annotated[
        str | None, Field(description="New lifecycle stage, e.g. 'lead' or 'customer'.", max_length=50)
    ] = None,
) -> Contact:
    """Update fields of one HubSpot contact; fields left out keep their value."""
    properties = changes(
        email=email,
        firstname=firstname,
        lastname=lastname,
        phone=phone,
        company=company,
        jobtitle=jobtitle,
        lifecyclestage=lifecyclestage,
    )
    require_changes(properties)
    body = await client.call(
        client.contacts.update, contact_id=contact_id, simple_public_object_input={"properties": properties}
    )
    return _contact(body)
