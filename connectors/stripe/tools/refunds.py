"""Refunds: money going back to a customer. Each refund is a write that moves money, made at most once."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.errors import ProviderRejected
from connectors.stripe.client import StripeClient
from connectors.stripe.tools._common import IdempotencyKey, found, id_of, iso, key_for
from scopes import CallFacts, FactsNeeded

__all__ = ["Refund", "stripe_refunds_create"]


class Refund(BaseModel):
    id: str
    status: str = Field(description="pending, requires_action, succeeded, failed or canceled.")
    amount: int = Field(description="The amount refunded, in the currency's smallest unit (cents for usd).")
    currency: str
    charge: str | None = None
    payment_intent: str | None = None
    reason: str | None = None
    failure_reason: str | None = None
    created: str | None = None


def _refund(obj: dict[str, Any]) -> Refund:
    return Refund(
        id=str(obj["id"]),
        status=str(obj.get("status")),
        amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency")),
        charge=id_of(obj.get("charge")),
        payment_intent=id_of(obj.get("payment_intent")),
        reason=obj.get("reason"),
        failure_reason=obj.get("failure_reason"),
        created=iso(obj.get("created")),
    )


async def _refund_facts(client: StripeClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    """The refunded payment's customer; with `needed.amount`, its currency and, when no amount is given, what
    a full refund returns: the charge's amount less what is already refunded. A payment intent refunds its
    latest charge, read only for that amount. A payment without a customer leaves `customers` unknown."""
    wants_customer = "customers" in needed.resources
    args = arguments.model_dump()
    intent_id, charge_id = args["payment_intent"], args["charge"]
    if not (wants_customer or needed.amount) or (intent_id is None) == (charge_id is None):
        return CallFacts()  # nothing asked, or arguments the tool refuses anyway
    wants_remaining = needed.amount and args["amount"] is None
    charge, payment = None, None
    if intent_id:
        payment = await found(client, client.v1.payment_intents.retrieve, intent_id)
        latest = id_of(payment.get("latest_charge")) if payment else None
        if wants_remaining and latest:
            charge = await found(client, client.v1.charges.retrieve, latest)
    else:
        payment = charge = await found(client, client.v1.charges.retrieve, charge_id)
    if payment is None:
        return CallFacts()
    customer = id_of(payment.get("customer"))
    remaining = None
    if charge is not None and wants_remaining:
        remaining = int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
    currency = payment.get("currency") if needed.amount else None
    return CallFacts(
        resources={"customers": [customer]} if wants_customer and customer else {},
        amount=remaining,
        currency=currency if isinstance(currency, str) and currency else None,
    )


# Moves money out to the customer's payment method (a sink, risk high). The charge's customer and, for a
# full refund, its refundable amount, and always its currency, are known only to Stripe: the hub resolves
# them (CallFacts) for `customers`, `max_amount`, `currency` and approval conditions, or the call is refused.
@tool(
    scopes=["payments.refunds.write"],
    labels=("financial",),
    resolved_resources=["customers"],
    facts=_refund_facts,
    sink=True,
    risk="high",
    amount="amount",
    amount_unit="minor",
    label_fields={"financial": ["amount"]},
)
async def stripe_refunds_create(
    client: StripeClient,
    payment_intent: Annotated[
        str | None,
        Field(
            description="Refund this payment intent ('pi_…'). Give this or `charge`.",
            pattern=r"^pi_[A-Za-z0-9]{1,100}$",
        ),
    ] = None,
    charge: Annotated[
        str | None,
        Field(
            description="Refund this charge ('ch_…' or 'py_…'). Give this or `payment_intent`.",
            pattern=r"^(ch|py)_[A-Za-z0-9]{1,100}$",
        ),
    ] = None,
    amount: Annotated[
        int | None,
        Field(
            description=(
                "How much to refund, in the currency's smallest unit (2500 = 25.00 usd); at most what is not "
                "refunded yet. Omit to refund everything not yet refunded."
            ),
            ge=1,
            le=99_999_999,
        ),
    ] = None,
    reason: Annotated[
        Literal["duplicate", "fraudulent", "requested_by_customer"] | None,
        Field(description="Why: duplicate, fraudulent or requested_by_customer."),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Refund:
    """Refund a Stripe payment, fully or partly, back to the customer's original payment method.

    Give the payment intent or the charge (find them with stripe_charges_list). The money leaves the
    available balance at once. Pass an `idempotency_key` and reuse it if you must retry: a repeated call
    with the same key and arguments never refunds twice.
    """
    if (payment_intent is None) == (charge is None):
        raise ProviderRejected("give exactly one of payment_intent or charge")
    params: dict[str, Any] = {"payment_intent": payment_intent} if payment_intent else {"charge": charge}
    if amount is not None:
        params["amount"] = amount
    if reason is not None:
        params["reason"] = reason
    body = await client.call(
        client.v1.refunds.create, params=params, options={"idempotency_key": key_for(idempotency_key)}
    )
    return _refund(body)
