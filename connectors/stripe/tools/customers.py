"""Stripe customers: the people and businesses who pay, with their email, name and phone (personal data)."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.errors import ProviderNotFound, ProviderRejected
from connectors.stripe.client import StripeClient
from connectors.stripe.tools._common import (
    After,
    CustomerId,
    IdempotencyKey,
    Limit,
    iso,
    key_for,
    metadata,
)
from scopes import CallFacts, FactsNeeded

__all__ = [
    "Customer",
    "CustomerPage",
    "customer",
    "stripe_customers_create",
    "stripe_customers_get",
    "stripe_customers_search",
]

_LABELS = ("pii.email", "pii.name", "pii.phone", "financial")


def _customer_fields(prefix: str = "") -> dict[str, list[str]]:
    """Where a result holds each label's data (`prefix` is the path of the list holding customers). `name`
    is a person's or a business's name, which no field-name convention covers."""
    return {
        "pii.email": [f"{prefix}email"],
        "pii.name": [f"{prefix}name"],
        "pii.phone": [f"{prefix}phone"],
        "financial": [f"{prefix}balance"],
    }


class Customer(BaseModel):
    id: str
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    currency: str | None = Field(default=None, description="The currency the customer is billed in, e.g. 'usd'.")
    balance: int | None = Field(
        default=None,
        description="Credit (negative) or debt (positive) applied to the next invoice, in the smallest unit.",
    )
    delinquent: bool | None = Field(default=None, description="True when the latest invoice payment failed.")
    created: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class CustomerPage(BaseModel):
    customers: list[Customer]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def customer(obj: dict[str, Any]) -> Customer:
    return Customer(
        id=str(obj["id"]),
        email=obj.get("email"),
        name=obj.get("name"),
        phone=obj.get("phone"),
        description=obj.get("description"),
        currency=obj.get("currency"),
        balance=obj.get("balance"),
        delinquent=obj.get("delinquent"),
        created=iso(obj.get("created")),
        metadata=metadata(obj.get("metadata")),
    )


@tool(
    scopes=["payments.customers.read"],
    labels=_LABELS,
    resources={},
    result_resources={"customers[].id": "customers"},
    limit="limit",
    label_fields=_customer_fields("customers[]."),
)
async def stripe_customers_search(
    client: StripeClient,
    query: Annotated[
        str,
        Field(
            description=(
                "A Stripe search query. Fields: email, name, phone, metadata['key'], created. "
                "`field:'value'` matches exactly, `field~'value'` matches a substring (3+ characters), "
                "`created>1700000000` compares Unix times; join clauses with AND or OR (not both), "
                "prefix one with - to negate. Examples: email:'ada@example.com', "
                "name~'lovelace' AND metadata['plan']:'pro'."
            ),
            min_length=3,
            max_length=1000,
        ),
    ],
    limit: Limit = 10,
    after: After = None,
) -> CustomerPage:
    """Search Stripe customers with Stripe's search query language, newest first.

    Use this to find a customer's id by email or name before reading their payments or invoicing them.
    Customers created in the last minute may not be found yet: use stripe_customers_get with the id
    you were given. Returns email, name, phone, currency, balance and metadata, and `next_cursor` when
    more match.
    """
    params: dict[str, Any] = {"query": query, "limit": limit}
    if after:
        params["page"] = after
    body = await client.call(client.v1.customers.search, params=params)
    more = body.get("next_page") if body.get("has_more") else None
    return CustomerPage(customers=[customer(c) for c in body.get("data") or []], next_cursor=more or None)


@tool(
    scopes=["payments.customers.read"],
    labels=_LABELS,
    resources={"customer_id": "customers"},
    label_fields=_customer_fields(),
)
async def stripe_customers_get(client: StripeClient, customer_id: CustomerId) -> Customer:
    """Get one Stripe customer by id, with email, name, phone, currency, balance and metadata."""
    body = await client.call(client.v1.customers.retrieve, customer_id)
    if body.get("deleted"):
        raise ProviderNotFound(f"Stripe customer {customer_id} was deleted")
    return customer(body)


async def _new_customer_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The customer a create touches is the one it makes, whose id Stripe gives only once it exists: `customers`
    stays unknown, so a grant listing customers refuses the call (it may not add customers). The email is an
    argument, checked as such. Nothing is fetched."""
    return CallFacts()


# A sink: the email is where Stripe mails this customer's invoices and receipts, which carry the name given
# here, so a value read elsewhere reaches an outsider through it (and `recipients_domain` limits who).
# A new customer's id only Stripe knows: under a `customers` allow-list it is refused unless the hub resolves it.
@tool(
    scopes=["payments.customers.write"],
    labels=_LABELS,
    resources={"email": "recipients_domain"},
    resolved_resources=["customers"],
    facts=_new_customer_facts,
    sink=True,
    risk="low",
    properties=["email", "name", "phone", "description"],
    label_fields=_customer_fields(),
)
async def stripe_customers_create(
    client: StripeClient,
    email: Annotated[
        str | None,
        Field(description="Email address; invoices are sent here.", max_length=512, pattern=r"^[^@\s]+@[^@\s]+$"),
    ] = None,
    name: Annotated[str | None, Field(description="Full name or business name.", max_length=256)] = None,
    phone: Annotated[str | None, Field(description="Phone number, ideally in E.164 form.", max_length=20)] = None,
    description: Annotated[
        str | None, Field(description="An internal note shown in the Stripe dashboard.", max_length=1000)
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Customer:
    """Create a Stripe customer, to invoice or charge later. Give at least an email or a name.

    Stripe allows several customers with the same email: search by email first and reuse the one found.
    """
    if not (email or name):
        raise ProviderRejected("give at least an email or a name for the new customer")
    params = {k: v for k, v in {"email": email, "name": name, "phone": phone, "description": description}.items() if v}
    body = await client.call(
        client.v1.customers.create, params=params, options={"idempotency_key": key_for(idempotency_key)}
    )
    return customer(body)
