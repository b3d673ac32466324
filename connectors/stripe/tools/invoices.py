"""Stripe invoices: a draft is created with its items, finalized (numbered, payable, no longer editable),
then sent to the customer by email."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import tool
from connectors.errors import ConnectorError
from connectors.stripe.client import StripeClient
from connectors.stripe.tools._common import (
    After,
    CustomerId,
    IdempotencyKey,
    InvoiceId,
    Limit,
    found,
    id_of,
    iso,
    key_for,
    next_cursor,
)
from scopes import CallFacts, FactsNeeded

__all__ = [
    "Invoice",
    "InvoiceItem",
    "InvoiceLine",
    "InvoicePage",
    "stripe_invoices_create",
    "stripe_invoices_finalize",
    "stripe_invoices_list",
    "stripe_invoices_send",
]

_MINOR = "in the currency's smallest unit (cents for usd)"
_MAX_LINES = 20
_FINANCIAL = ("total", "amount_due", "amount_paid", "amount_remaining", "lines[].amount")


class InvoiceItem(BaseModel):
    """One line to bill."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="What is billed, as the customer will read it.", min_length=1, max_length=500)
    unit_amount: int = Field(
        description=f"The price of one unit, {_MINOR}; negative for a credit line.", ge=-99_999_999, le=99_999_999
    )
    quantity: int = Field(default=1, description="How many units.", ge=1, le=10_000)


class InvoiceLine(BaseModel):
    description: str | None = None
    amount: int = Field(description=f"The line's total, {_MINOR}.")
    quantity: int | None = None


class Invoice(BaseModel):
    id: str
    number: str | None = Field(default=None, description="The invoice number, set when it is finalized.")
    status: str | None = Field(
        default=None, description="draft (editable), open (finalized, awaiting payment), paid, uncollectible or void."
    )
    customer: str | None = None
    currency: str | None = None
    total: int | None = Field(default=None, description=f"The invoice total, {_MINOR}.")
    amount_due: int | None = None
    amount_paid: int | None = None
    amount_remaining: int | None = None
    collection_method: str | None = Field(
        default=None, description="send_invoice (the customer pays by link) or charge_automatically."
    )
    due_date: str | None = None
    description: str | None = None
    hosted_invoice_url: str | None = Field(
        default=None, description="The page where the customer can view and pay the invoice, once finalized."
    )
    lines: list[InvoiceLine] = Field(default_factory=list, description=f"The first {_MAX_LINES} lines.")
    created: str | None = None


class InvoicePage(BaseModel):
    invoices: list[Invoice]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


def _invoice(obj: dict[str, Any]) -> Invoice:
    lines = (obj.get("lines") or {}).get("data") or []
    return Invoice(
        id=str(obj["id"]),
        number=obj.get("number"),
        status=obj.get("status"),
        customer=id_of(obj.get("customer")),
        currency=obj.get("currency"),
        total=obj.get("total"),
        amount_due=obj.get("amount_due"),
        amount_paid=obj.get("amount_paid"),
        amount_remaining=obj.get("amount_remaining"),
        collection_method=obj.get("collection_method"),
        due_date=iso(obj.get("due_date")),
        description=obj.get("description"),
        hosted_invoice_url=obj.get("hosted_invoice_url"),
        lines=[
            InvoiceLine(
                description=line.get("description"), amount=int(line.get("amount") or 0), quantity=line.get("quantity")
            )
            for line in lines[:_MAX_LINES]
            if isinstance(line, dict)
        ],
        created=iso(obj.get("created")),
    )


@tool(
    scopes=["payments.invoices.read"],
    labels=("financial",),
    resources={"customer": "customers"},
    result_resources={"invoices[].customer": "customers"},
    limit="limit",
    label_fields={"financial": [f"invoices[].{path}" for path in _FINANCIAL]},
)
async def stripe_invoices_list(
    client: StripeClient,
    customer: Annotated[
        str | None,
        Field(description="Only this customer's invoices, by id ('cus_…').", pattern=r"^cus_[A-Za-z0-9]{1,100}$"),
    ] = None,
    status: Annotated[
        Literal["draft", "open", "paid", "uncollectible", "void"] | None,
        Field(description="Only invoices in this status."),
    ] = None,
    limit: Limit = 10,
    after: After = None,
) -> InvoicePage:
    """List Stripe invoices, newest first, optionally for one customer or in one status.

    Returns number, status, totals, amounts due and paid, due date, the payment page URL and lines.
    """
    params: dict[str, Any] = {
        "limit": limit,
        **{k: v for k, v in {"customer": customer, "status": status}.items() if v},
    }
    if after:
        params["starting_after"] = after
    body = await client.call(client.v1.invoices.list, params=params)
    return InvoicePage(invoices=[_invoice(i) for i in body.get("data") or []], next_cursor=next_cursor(body))


async def _customer_currency_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """With `needed.amount` and no `currency` argument: the customer's currency, which the invoice takes (the
    amount is the lines', in the arguments). Unknown while the customer has none or does not exist."""
    args = arguments.model_dump()
    if not needed.amount or args["currency"]:
        return CallFacts()
    found_customer = await found(client, client.v1.customers.retrieve, args["customer"])
    currency = (found_customer or {}).get("currency")
    return CallFacts(currency=currency if isinstance(currency, str) and currency else None)


async def _invoice_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """What the invoice holds: its customer (`customers`), the address Stripe emails it to (`customer_email`,
    for `recipients_domain`) and, with `needed.amount`, its total and currency. An invoice Stripe does not
    have leaves them unknown."""
    if not (needed.resources or needed.amount):
        return CallFacts()
    invoice = await found(client, client.v1.invoices.retrieve, arguments.model_dump()["invoice_id"])
    if invoice is None:
        return CallFacts()
    values = {"customers": id_of(invoice.get("customer")), "recipients_domain": invoice.get("customer_email")}
    total, currency = invoice.get("total"), invoice.get("currency")
    return CallFacts(
        resources={name: [str(values[name])] for name in needed.resources if values.get(name)},
        amount=total if needed.amount and isinstance(total, int) else None,
        currency=currency if needed.amount and isinstance(currency, str) and currency else None,
    )


# A sink: the memo and line descriptions are printed on the invoice the customer is emailed. A draft moves
# no money (risk low); its amount is the sum of the lines. Without `currency` the invoice takes the
# customer's, which the hub must resolve for a `currency` limit.
@tool(
    scopes=["payments.invoices.write"],
    labels=("financial",),
    resources={"customer": "customers"},
    sink=True,
    risk="low",
    amount="items[].unit_amount*quantity",
    currency="currency",
    amount_unit="minor",
    facts=_customer_currency_facts,
    label_fields={"financial": list(_FINANCIAL)},
)
async def stripe_invoices_create(
    client: StripeClient,
    customer: CustomerId,
    items: Annotated[list[InvoiceItem], Field(description="The lines to bill, 1 to 50.", min_length=1, max_length=50)],
    collection_method: Annotated[
        Literal["send_invoice", "charge_automatically"],
        Field(
            description=(
                "send_invoice: the customer gets an email with a payment link (default). "
                "charge_automatically: Stripe charges the customer's saved payment method."
            )
        ),
    ] = "send_invoice",
    days_until_due: Annotated[
        int, Field(description="Days the customer has to pay, for send_invoice.", ge=1, le=365)
    ] = 30,
    currency: Annotated[
        str | None,
        Field(
            description="Three-letter currency code, lower case, e.g. 'usd'; defaults to the customer's.",
            pattern=r"^[a-z]{3}$",
        ),
    ] = None,
    description: Annotated[str | None, Field(description="A memo shown on the invoice.", max_length=1500)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Invoice:
    """Create a draft Stripe invoice for a customer with the given lines; nothing is sent or charged yet.

    Review the returned totals, then call stripe_invoices_finalize and stripe_invoices_send. If this
    fails part-way, repeat it with the same `idempotency_key` (the error names it) to finish the same
    draft rather than start another.
    """
    key = key_for(idempotency_key)
    params: dict[str, Any] = {
        "customer": customer,
        "collection_method": collection_method,
        "auto_advance": False,  # finalizing and sending are the agent's explicit steps
        "pending_invoice_items_behavior": "exclude",  # bill exactly these items, nothing left pending
    }
    if collection_method == "send_invoice":
        params["days_until_due"] = days_until_due
    if currency:
        params["currency"] = currency
    if description:
        params["description"] = description
    draft = await client.call(client.v1.invoices.create, params=params, options={"idempotency_key": f"{key}:invoice"})
    invoice_id = str(draft["id"])
    for number, item in enumerate(items):
        line = {
            "customer": customer,
            "invoice": invoice_id,
            "currency": draft.get("currency") or currency,
            "description": item.description,
            "unit_amount": item.unit_amount,
            "quantity": item.quantity,
        }
        try:
            await client.call(
                client.v1.invoice_items.create,
                params={k: v for k, v in line.items() if v is not None},
                options={"idempotency_key": f"{key}:item:{number}"},
            )
        except ConnectorError as exc:
            exc.message = (
                f"{exc.message}. Draft invoice {invoice_id} was created but line {number + 1} of {len(items)} "
                f"was not added: call again with idempotency_key={key!r} and the same arguments to finish it"
            )
            exc.args = (exc.message,)
            raise
    return _invoice(await client.call(client.v1.invoices.retrieve, invoice_id))


# The invoice's customer, total and currency are known only to Stripe: the hub resolves them (CallFacts) for
# `customers`, `max_amount` and `currency`. No data in the arguments (no sink), but it is irreversible and
# makes the invoice payable by anyone with its URL (risk high).
@tool(
    scopes=["payments.invoices.write"],
    labels=("financial",),
    resolved_resources=["customers"],
    facts=_invoice_facts,
    sink=False,
    risk="high",
    amount_unit="minor",
    label_fields={"financial": list(_FINANCIAL)},
)
async def stripe_invoices_finalize(client: StripeClient, invoice_id: InvoiceId) -> Invoice:
    """Finalize a draft Stripe invoice: it gets its number and payment page and can no longer be edited.

    Nothing is emailed; call stripe_invoices_send next for invoices the customer pays by link.
    """
    body = await client.call(
        client.v1.invoices.finalize_invoice, invoice_id, options={"idempotency_key": key_for(None)}
    )
    return _invoice(body)


# Emails the invoice to the customer's address, which only Stripe knows: the hub resolves the customer and
# the recipient for `customers` and `recipients_domain`, the total and currency for the amount limits.
@tool(
    scopes=["payments.invoices.write"],
    labels=("financial",),
    resolved_resources=["customers", "recipients_domain"],
    facts=_invoice_facts,
    sink=True,
    risk="high",
    amount_unit="minor",
    label_fields={"financial": list(_FINANCIAL)},
)
async def stripe_invoices_send(client: StripeClient, invoice_id: InvoiceId) -> Invoice:
    """Email a finalized (open) Stripe invoice to its customer, with the link to pay it.

    Only for invoices with collection_method send_invoice. Sending again emails the customer again. The
    status stays `open` until the customer pays.
    """
    body = await client.call(client.v1.invoices.send_invoice, invoice_id, options={"idempotency_key": key_for(None)})
    return _invoice(body)
