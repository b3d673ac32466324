"""Money coming in: payment intents (a payment's life cycle), charges (each attempt to move money, with the
card's brand and last four digits only) and the account balance."""

from typing import Annotated, Any

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.stripe.client import StripeClient
from connectors.stripe.tools._common import After, Limit, found, id_of, iso, next_cursor
from scopes import CallFacts, FactsNeeded

__all__ = [
    "Balance",
    "Card",
    "Charge",
    "ChargePage",
    "Funds",
    "PaymentIntent",
    "PaymentIntentPage",
    "stripe_balance_get",
    "stripe_charges_get",
    "stripe_charges_list",
    "stripe_payment_intents_get",
    "stripe_payment_intents_list",
]

_MINOR = "in the currency's smallest unit (cents for usd)"
_INTENT_AMOUNTS = ("amount", "amount_received")
_CHARGE_AMOUNTS = ("amount", "amount_captured", "amount_refunded")

PaymentIntentId = Annotated[
    str,
    Field(description="The Stripe payment intent id, e.g. 'pi_3MtwBwLkdIwHu7ix'.", pattern=r"^pi_[A-Za-z0-9]{1,100}$"),
]
ChargeId = Annotated[
    str,
    Field(
        description="The Stripe charge id, e.g. 'ch_3MmlLrLkdIwHu7ix' (or 'py_…' for some payment methods).",
        pattern=r"^(ch|py)_[A-Za-z0-9]{1,100}$",
    ),
]
CustomerFilter = Annotated[
    str | None,
    Field(description="Only this customer's, by id ('cus_…').", pattern=r"^cus_[A-Za-z0-9]{1,100}$"),
]


class PaymentIntent(BaseModel):
    id: str
    status: str = Field(
        description="requires_payment_method, requires_confirmation, requires_action, processing, "
        "requires_capture, canceled or succeeded."
    )
    amount: int = Field(description=f"The amount to collect, {_MINOR}.")
    amount_received: int | None = Field(default=None, description=f"What was collected, {_MINOR}.")
    currency: str
    customer: str | None = None
    description: str | None = None
    invoice: str | None = None
    latest_charge: str | None = Field(default=None, description="The charge of the latest attempt, 'ch_…'.")
    last_error: str | None = Field(default=None, description="Why the last payment attempt failed, if it did.")
    cancellation_reason: str | None = None
    created: str | None = None


class PaymentIntentPage(BaseModel):
    payment_intents: list[PaymentIntent]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


class Card(BaseModel):
    brand: str | None = Field(default=None, description="visa, mastercard, amex, …")
    last4: str | None = Field(default=None, description="The card number's last four digits.")


class Charge(BaseModel):
    id: str
    status: str = Field(description="succeeded, pending or failed.")
    paid: bool | None = None
    amount: int = Field(description=f"The amount charged, {_MINOR}.")
    amount_captured: int | None = None
    amount_refunded: int = Field(default=0, description=f"How much was refunded so far, {_MINOR}.")
    refunded: bool = Field(default=False, description="True once the whole amount is refunded.")
    disputed: bool | None = None
    currency: str
    customer: str | None = None
    payment_intent: str | None = None
    invoice: str | None = None
    description: str | None = None
    failure_message: str | None = None
    card: Card | None = Field(default=None, description="The card's brand and last four digits, for card payments.")
    created: str | None = None


class ChargePage(BaseModel):
    charges: list[Charge]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


class Funds(BaseModel):
    amount: int = Field(description=f"The amount, {_MINOR}; negative when refunds exceeded income.")
    currency: str


class Balance(BaseModel):
    available: list[Funds] = Field(description="Funds that can be paid out or used for refunds now.")
    pending: list[Funds] = Field(description="Funds not yet available, e.g. recent card payments.")
    livemode: bool | None = Field(default=None, description="False for a Stripe test-mode account.")


def _payment_intent(obj: dict[str, Any]) -> PaymentIntent:
    error = obj.get("last_payment_error")
    return PaymentIntent(
        id=str(obj["id"]),
        status=str(obj.get("status")),
        amount=int(obj.get("amount") or 0),
        amount_received=obj.get("amount_received"),
        currency=str(obj.get("currency")),
        customer=id_of(obj.get("customer")),
        description=obj.get("description"),
        invoice=id_of(obj.get("invoice")),
        latest_charge=id_of(obj.get("latest_charge")),
        last_error=(error.get("message") if isinstance(error, dict) else None),
        cancellation_reason=obj.get("cancellation_reason"),
        created=iso(obj.get("created")),
    )


def _card(obj: dict[str, Any]) -> Card | None:
    details = obj.get("payment_method_details") or {}
    card = details.get("card") or details.get("card_present")
    if not isinstance(card, dict):
        return None
    # Only the brand and the last four digits, whatever else the answer carries.
    return Card(brand=card.get("brand"), last4=card.get("last4"))


def _charge(obj: dict[str, Any]) -> Charge:
    return Charge(
        id=str(obj["id"]),
        status=str(obj.get("status")),
        paid=obj.get("paid"),
        amount=int(obj.get("amount") or 0),
        amount_captured=obj.get("amount_captured"),
        amount_refunded=int(obj.get("amount_refunded") or 0),
        refunded=bool(obj.get("refunded")),
        disputed=obj.get("disputed"),
        currency=str(obj.get("currency")),
        customer=id_of(obj.get("customer")),
        payment_intent=id_of(obj.get("payment_intent")),
        invoice=id_of(obj.get("invoice")),
        description=obj.get("description"),
        failure_message=obj.get("failure_message"),
        card=_card(obj),
        created=iso(obj.get("created")),
    )


def _customer_facts(payment: dict[str, Any] | None) -> CallFacts:
    """A payment's customer for `customers`; unknown for a payment without one or one Stripe does not have."""
    customer = id_of((payment or {}).get("customer"))
    return CallFacts(resources={"customers": [customer]}) if customer else CallFacts()


async def _intent_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The payment intent's customer."""
    if "customers" not in needed.resources:
        return CallFacts()
    intent_id = arguments.model_dump()["payment_intent_id"]
    return _customer_facts(await found(client, client.v1.payment_intents.retrieve, intent_id))


async def _charge_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The charge's customer."""
    if "customers" not in needed.resources:
        return CallFacts()
    charge_id = arguments.model_dump()["charge_id"]
    return _customer_facts(await found(client, client.v1.charges.retrieve, charge_id))


def _page_params(limit: int, after: str | None, **filters: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, **{k: v for k, v in filters.items() if v}}
    if after:
        params["starting_after"] = after
    return params


@tool(
    scopes=["payments.charges.read"],
    labels=("financial",),
    resources={"customer": "customers"},
    result_resources={"payment_intents[].customer": "customers"},
    limit="limit",
    label_fields={"financial": [f"payment_intents[].{name}" for name in _INTENT_AMOUNTS]},
)
async def stripe_payment_intents_list(
    client: StripeClient, customer: CustomerFilter = None, limit: Limit = 10, after: After = None
) -> PaymentIntentPage:
    """List Stripe payment intents, newest first, optionally for one customer.

    A payment intent tracks one payment from creation to success; its `latest_charge` is the charge to
    refund. Returns status, amounts, currency, customer and `next_cursor` when there are more.
    """
    body = await client.call(client.v1.payment_intents.list, params=_page_params(limit, after, customer=customer))
    return PaymentIntentPage(
        payment_intents=[_payment_intent(p) for p in body.get("data") or []], next_cursor=next_cursor(body)
    )


# The payment's customer is known only to Stripe: the hub resolves it for `customers`.
@tool(
    scopes=["payments.charges.read"],
    labels=("financial",),
    resolved_resources=["customers"],
    facts=_intent_facts,
    label_fields={"financial": list(_INTENT_AMOUNTS)},
)
async def stripe_payment_intents_get(client: StripeClient, payment_intent_id: PaymentIntentId) -> PaymentIntent:
    """Get one Stripe payment intent by id: status, amounts, customer, latest charge and any failure."""
    return _payment_intent(await client.call(client.v1.payment_intents.retrieve, payment_intent_id))


@tool(
    scopes=["payments.charges.read"],
    labels=("financial", "financial.card"),
    resources={"customer": "customers"},
    result_resources={"charges[].customer": "customers"},
    limit="limit",
    label_fields={
        "financial": [f"charges[].{name}" for name in _CHARGE_AMOUNTS],
        "financial.card": ["charges[].card.brand", "charges[].card.last4"],
    },
)
async def stripe_charges_list(
    client: StripeClient,
    customer: CustomerFilter = None,
    payment_intent: Annotated[
        str | None,
        Field(description="Only the charges of this payment intent ('pi_…').", pattern=r"^pi_[A-Za-z0-9]{1,100}$"),
    ] = None,
    limit: Limit = 10,
    after: After = None,
) -> ChargePage:
    """List Stripe charges, newest first, optionally for one customer or one payment intent.

    Shows what was paid, refunded and disputed, and the card's brand and last four digits. Use it to
    find the charge a customer asks about before refunding it.
    """
    params = _page_params(limit, after, customer=customer, payment_intent=payment_intent)
    body = await client.call(client.v1.charges.list, params=params)
    return ChargePage(charges=[_charge(c) for c in body.get("data") or []], next_cursor=next_cursor(body))


@tool(
    scopes=["payments.charges.read"],
    labels=("financial", "financial.card"),
    resolved_resources=["customers"],
    facts=_charge_facts,
    label_fields={"financial": list(_CHARGE_AMOUNTS), "financial.card": ["card.brand", "card.last4"]},
)
async def stripe_charges_get(client: StripeClient, charge_id: ChargeId) -> Charge:
    """Get one Stripe charge by id: amount, how much is refunded, status, customer, card brand and last4."""
    return _charge(await client.call(client.v1.charges.retrieve, charge_id))


# The account's own balance: no customer's, so no allow-list applies.
@tool(
    scopes=["payments.charges.read"],
    labels=("financial",),
    resources={},
    label_fields={"financial": ["available[].amount", "pending[].amount"]},
)
async def stripe_balance_get(client: StripeClient) -> Balance:
    """Get the Stripe account's balance per currency: available now, and pending.

    Refunds are paid from the available balance; check it before a large refund.
    """
    body = await client.call(client.v1.balance.retrieve)

    def funds(key: str) -> list[Funds]:
        return [Funds(amount=int(f.get("amount") or 0), currency=str(f.get("currency"))) for f in body.get(key) or []]

    return Balance(available=funds("available"), pending=funds("pending"), livemode=body.get("livemode"))
