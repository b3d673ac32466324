"""HubSpot's OAuth and API facts. Access tokens live 30 minutes; refresh tokens do not rotate."""

from connectors.base import Manifest

MANIFEST = Manifest(
    name="hubspot",
    display_name="HubSpot",
    settings_key="hubspot",
    authorize_url="https://app.hubspot.com/oauth/authorize",
    token_url="https://api.hubapi.com/oauth/v1/token",
    api_base="https://api.hubapi.com",
    scope_map={
        "crm.contacts.read": ("crm.objects.contacts.read",),
        "crm.contacts.write": ("crm.objects.contacts.write",),
        "crm.companies.read": ("crm.objects.companies.read",),
        "crm.companies.write": ("crm.objects.companies.write",),
        "crm.deals.read": ("crm.objects.deals.read",),
        "crm.deals.write": ("crm.objects.deals.write",),
    },
    scope_separator=" ",
    token_endpoint_auth_method="client_secret_post",
)
