"""The hub's provider-neutral scope names, `<area>.<resource>.<action>` (DESIGN.md section 3).

Connectors map these to provider OAuth scopes; grants and tools refer only to these names.
"""

from types import MappingProxyType
from typing import Final

__all__ = ["SCOPES", "is_known_scope"]

SCOPES: Final = MappingProxyType(
    {
        "crm.contacts.read": "Read CRM contacts",
        "crm.contacts.write": "Create and update CRM contacts",
        "crm.companies.read": "Read CRM companies",
        "crm.companies.write": "Create and update CRM companies",
        "crm.deals.read": "Read CRM deals, pipelines and stages",
        "crm.deals.write": "Create and update CRM deals",
        "crm.notes.write": "Create notes on CRM records",
        "crm.owners.read": "Read CRM owners: the users records are assigned to, with names and emails",
        "storage.files.read": "List and read stored files",
        "storage.files.write": "Upload, create and move stored files",
        "messaging.email.read": "Search and read email",
        "messaging.email.send": "Send email and create drafts",
        "messaging.chat.read": "Read chat channels and messages",
        "messaging.chat.send": "Post chat messages",
        "payments.customers.read": "Read payment customers",
        "payments.customers.write": "Create payment customers",
        "payments.charges.read": "Read charges and payment intents",
        "payments.refunds.write": "Create refunds",
        "payments.invoices.read": "Read invoices",
        "payments.invoices.write": "Create, finalize and send invoices",
        "payments.links.write": "Create payment links (hosted checkout pages that take payments)",
    }
)


def is_known_scope(scope: str) -> bool:
    return scope in SCOPES
