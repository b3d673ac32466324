"""HubSpot's OAuth and API facts. Access tokens live 30 minutes; refresh tokens do not rotate.

Two mappings are not one-to-one, because HubSpot has no narrower scope to ask for:
- `crm.notes.write` asks for `crm.objects.contacts.write`. HubSpot's notes API (`/crm/v3/objects/notes`)
  is governed by the contacts scopes whichever record the note is attached to. The token can then also
  write contacts; the hub's own grant check still keeps an agent granted only `crm.notes.write` to the
  note tool.
- `crm.deals.read` also covers the deal pipelines and stages: HubSpot's pipelines API accepts the object's
  own read scope (`crm.objects.deals.read` for deal pipelines).
`crm.owners.read` (the account's users, by name and email) maps to HubSpot's own `crm.objects.owners.read`,
so reading staff details is asked for, and granted, separately from any CRM object.
"""

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
        "crm.notes.write": ("crm.objects.contacts.write",),
        "crm.owners.read": ("crm.objects.owners.read",),
    },
    scope_separator=" ",
    token_endpoint_auth_method="client_secret_post",
)
