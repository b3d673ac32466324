"""Payment links: a hosted Stripe checkout page for existing prices, shareable with anyone."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import tool
from connectors.errors import ProviderRejected
from connectors.stripe.client import StripeClient
from connectors.stripe.tools._common import IdempotencyKey, PriceId, key_for

__all__ = ["LineItem", "PaymentLink", "stripe_payment_links_create"]


class LineItem(BaseModel):
    """One product on the payment page."""

    model_config = ConfigDict(extra="forbid")

    price: PriceId
    quantity: int = Field(default=1, description="How many units.", ge=1, le=999)


class PaymentLink(BaseModel):
    id: str
    url: str = Field(description="The checkout page's address, to share with the customer.")
    active: bool = True
    currency: str | None = None


# A sink: the link is made to be shared with outsiders, and anyone with it sees the products and can pay.
# It bills no customer (no allow-list applies) and moves no money out (risk low). Its amount is the
# prices' (known only to Stripe): the hub resolves it for `max_amount`, `currency` and an approval condition.
@tool(scopes=["payments.links.write"], resources={}, sink=True, risk="low", amount_unit="minor")
async def stripe_payment_links_create(
    client: StripeClient,
    price: Annotated[
        str | None,
        Field(
            description="A Stripe price id ('price_…') to sell; give this or `line_items`.",
            pattern=r"^price_[A-Za-z0-9]{1,100}$",
        ),
    ] = None,
    quantity: Annotated[int, Field(description="How many units of `price`.", ge=1, le=999)] = 1,
    line_items: Annotated[
        list[LineItem] | None,
        Field(description="Several prices with quantities, 1 to 20; instead of `price`.", min_length=1, max_length=20),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> PaymentLink:
    """Create a Stripe payment link: a checkout page anyone with the URL can pay, for existing prices.

    Payment links sell prices already set up in Stripe (ids 'price_…'); they cannot bill a custom amount.
    To bill one customer a custom amount, create an invoice instead.
    """
    if (price is None) == (line_items is None):
        raise ProviderRejected("give exactly one of price or line_items")
    items = [LineItem(price=price, quantity=quantity)] if price else list(line_items or [])
    body = await client.call(
        client.v1.payment_links.create,
        params={"line_items": [{"price": i.price, "quantity": i.quantity} for i in items]},
        options={"idempotency_key": key_for(idempotency_key)},
    )
    return PaymentLink(
        id=str(body["id"]),
        url=str(body.get("url")),
        active=bool(body.get("active", True)),
        currency=body.get("currency"),
    )
