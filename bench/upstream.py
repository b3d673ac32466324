"""The one upstream request every mode ends in: HubSpot's GET contact, asking for what the hub's tool asks."""

from urllib.parse import urlencode

__all__ = ["TOOL", "contact_path"]

TOOL = "hubspot_contacts_get"
# The same properties, sent the same way (repeated parameter), as connectors.hubspot's hubspot_contacts_get,
# so the sandbox does identical work in every mode and only the hop in front of it differs.
_PROPERTIES = ["email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage"]
_QUERY = urlencode([("properties", p) for p in _PROPERTIES])


def contact_path(contact_id: str) -> str:
    return f"/crm/v3/objects/contacts/{contact_id}?{_QUERY}"
