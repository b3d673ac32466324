"""One small Stripe test-mode account kept in memory: customers, payment intents with their charges, refunds
that move the balance, prices and payment links. Invoices live in `_stripe_billing`.

Pure data, no HTTP: the caller holds the sandbox's lock and turns `StripeApiError` into Stripe's error body.
Objects are kept in creation order; lists answer newest first, like Stripe.
"""

import base64
import random
import string
import time
from collections.abc import Callable, Iterable
from typing import Any

from hub.sandbox import _stripe_shapes as shapes
from hub.sandbox._stripe_params import Params, StripeApiError
from hub.sandbox._stripe_search import compile_query

__all__ = ["StripeStore", "no_such"]

_ALNUM = string.ascii_letters + string.digits
_CUSTOMER_FIELDS = frozenset({"email", "name", "phone", "created"})
_DAY = 86_400
_BASE_AVAILABLE = 250_000  # what the account had before the seeded payments: refunds have room


def no_such(kind: str, object_id: str, *, param: str | None = None, status: int = 404) -> StripeApiError:
    return StripeApiError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param or "id")


class StripeStore:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rng = random.Random(20230816)  # seeded: the same sandbox ids on every start
        self.account = self.new_id("acct", 16)
        self.customers: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.payment_links: dict[str, dict[str, Any]] = {}
        self.available: dict[str, int] = {"usd": _BASE_AVAILABLE}
        self.pending: dict[str, int] = {"usd": 0}
        self._seed()

    # -- helpers -------------------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock())

    def new_id(self, prefix: str, length: int = 24) -> str:
        return f"{prefix}_" + "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def get(
        self, table: dict[str, dict[str, Any]], kind: str, object_id: str, *, param: str | None = None
    ) -> dict[str, Any]:
        found = table.get(object_id)
        if found is None:
            raise no_such(kind, object_id, param=param, status=400 if param else 404)
        return found

    def page(self, objects: Iterable[dict[str, Any]], params: Params, *, kind: str, url: str) -> dict[str, Any]:
        """A Stripe list of `objects` (given oldest first), newest first, cut by limit/starting_after/ending_before."""
        newest = list(objects)[::-1]
        limit = params.integer("limit", minimum=1) or 10
        if limit > 100:
            raise StripeApiError(400, "This value must be less than or equal to 100.", param="limit")
        ids = [o["id"] for o in newest]
        after, before = params.string("starting_after"), params.string("ending_before")
        if after and before:
            raise StripeApiError(400, "You may only specify one of these parameters: starting_after, ending_before.")
        if before:
            if before not in ids:
                raise no_such(kind, before, param="ending_before", status=400)
            end = ids.index(before)
            start = max(0, end - limit)
            return {"object": "list", "data": newest[start:end], "has_more": start > 0, "url": url}
        start = 0
        if after:
            if after not in ids:
                raise no_such(kind, after, param="starting_after", status=400)
            start = ids.index(after) + 1
        chunk = newest[start : start + limit]
        return {"object": "list", "data": chunk, "has_more": start + limit < len(newest), "url": url}

    # -- customers -----------------------------------------------------------------------------------------

    def create_customer(self, params: Params) -> dict[str, Any]:
        created = shapes.customer(
            id=self.new_id("cus", 14),
            created=self.now(),
            email=params.string("email", max_length=512),
            name=params.string("name", max_length=256),
            phone=params.string("phone", max_length=20),
        )
        created["description"] = params.string("description")
        created["metadata"] = params.metadata()
        self.customers[created["id"]] = created
        return created

    def search_customers(self, params: Params) -> dict[str, Any]:
        query = params.string("query", required=True) or ""
        matches = compile_query(query, resource="customers", fields=_CUSTOMER_FIELDS)
        limit = params.integer("limit", minimum=1) or 10
        if limit > 100:
            raise StripeApiError(400, "This value must be less than or equal to 100.", param="limit")
        offset = _page_offset(params.string("page"))
        found = [c for c in reversed(self.customers.values()) if matches(c)]
        more = offset + limit < len(found)
        return {
            "object": "search_result",
            "data": found[offset : offset + limit],
            "has_more": more,
            "next_page": _page_token(offset + limit) if more else None,
            "url": "/v1/customers/search",
        }

    # -- payment intents, charges, refunds, balance --------------------------------------------------------

    def pay(self, *, customer: str | None, amount: int, description: str, brand: str, last4: str, ok: bool) -> None:
        """Record one card payment as Stripe would leave it: the intent, its charge, the balance."""
        created = self.now()
        intent = shapes.payment_intent(id=self.new_id("pi"), created=created, amount=amount, customer=customer)
        charge = shapes.charge(
            id=self.new_id("ch"),
            created=created,
            amount=amount,
            customer=customer,
            payment_intent=intent["id"],
            brand=brand,
            last4=last4,
        )
        intent |= {
            "description": description,
            "latest_charge": charge["id"],
            "payment_method": charge["payment_method"],
        }
        charge["description"] = description
        if ok:
            intent |= {"status": "succeeded", "amount_received": amount}
            self.pending["usd"] += amount
        else:
            declined = "Your card was declined."
            intent["last_payment_error"] = {
                "charge": charge["id"],
                "code": "card_declined",
                "decline_code": "generic_decline",
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": declined,
                "type": "card_error",
            }
            charge |= {
                "status": "failed",
                "paid": False,
                "captured": False,
                "amount_captured": 0,
                "failure_code": "card_declined",
                "failure_message": declined,
            }
        self.payment_intents[intent["id"]] = intent
        self.charges[charge["id"]] = charge

    def settle(self) -> None:
        """Pending funds become available (Stripe does this on its payout schedule)."""
        for currency, amount in self.pending.items():
            self.available[currency] = self.available.get(currency, 0) + amount
            self.pending[currency] = 0

    def refund(self, params: Params) -> dict[str, Any]:
        intent_id, charge_id = params.string("payment_intent"), params.string("charge")
        reason = params.choice("reason", ("duplicate", "fraudulent", "requested_by_customer"))
        amount = params.integer("amount", minimum=1)
        metadata = params.metadata()
        if not intent_id and not charge_id:
            raise StripeApiError(400, "One of `charge` or `payment_intent` is required.", code="parameter_missing")
        if intent_id:
            intent = self.get(self.payment_intents, "payment_intent", intent_id, param="payment_intent")
            if intent["status"] != "succeeded" or not intent["latest_charge"]:
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            if charge_id and charge_id != intent["latest_charge"]:
                raise StripeApiError(400, "The charge does not belong to this PaymentIntent.", param="charge")
            charge_id = intent["latest_charge"]
        assert charge_id is not None
        charge = self.get(self.charges, "charge", charge_id, param="charge")
        remaining = charge["amount"] - charge["amount_refunded"]
        if charge["status"] != "succeeded":
            raise StripeApiError(400, f"Charge {charge_id} has not succeeded; there is nothing to refund.")
        if remaining <= 0:
            raise StripeApiError(400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise StripeApiError(
                400,
                f"Refund amount ({_usd(amount)}) is greater than unrefunded amount on charge ({_usd(remaining)})",
                code="amount_too_large",
                param="amount",
            )
        created = shapes.refund(
            id=self.new_id("re"),
            created=self.now(),
            amount=amount,
            charge=charge_id,
            payment_intent=charge["payment_intent"],
            reason=reason,
        )
        created["metadata"] = metadata
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        currency = charge["currency"]
        self.available[currency] = self.available.get(currency, 0) - amount
        self.refunds[created["id"]] = created
        return created

    def balance(self) -> dict[str, Any]:
        return shapes.balance(self.available, self.pending)

    # -- prices and payment links --------------------------------------------------------------------------

    def add_price(self, *, unit_amount: int, currency: str, nickname: str | None) -> dict[str, Any]:
        created = shapes.price(
            id=self.new_id("price"),
            created=self.now(),
            currency=currency,
            unit_amount=unit_amount,
            product=self.new_id("prod", 14),
            nickname=nickname,
        )
        self.prices[created["id"]] = created
        return created

    def create_payment_link(self, params: Params) -> dict[str, Any]:
        items = params.objects("line_items", ("price", "quantity", "adjustable_quantity"), required=True)
        if not 1 <= len(items) <= 20:
            raise StripeApiError(400, "A payment link takes 1 to 20 line items.", param="line_items")
        currencies = set()
        for index, item in enumerate(items):
            where = f"line_items[{index}]"
            price_id = item.get("price")
            if not price_id:
                raise StripeApiError(
                    400, f"Missing required param: {where}[price].", code="parameter_missing", param=f"{where}[price]"
                )
            price = self.get(self.prices, "price", str(price_id), param=f"{where}[price]")
            quantity = Params({"quantity": item.get("quantity")}, ("quantity",)).integer("quantity", minimum=1)
            if quantity is None:
                raise StripeApiError(
                    400,
                    f"Missing required param: {where}[quantity].",
                    code="parameter_missing",
                    param=f"{where}[quantity]",
                )
            currencies.add(price["currency"])
        if len(currencies) > 1:
            raise StripeApiError(400, "All prices on a payment link must share one currency.", param="line_items")
        link_id = self.new_id("plink")
        created = shapes.payment_link(
            id=link_id, currency=currencies.pop(), url=f"https://buy.stripe.com/test_{link_id[6:20]}"
        )
        created["metadata"] = params.metadata()
        self.payment_links[link_id] = created
        return created

    # -- seed ----------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        start = self.now() - 60 * _DAY
        clock, self._clock = self._clock, lambda: start
        try:
            ids = []
            for index, (name, email, phone, metadata) in enumerate(shapes.SEED_CUSTOMERS):
                start += _DAY
                customer = shapes.customer(
                    id=self.new_id("cus", 14), created=start, email=email, name=name, phone=phone
                )
                customer |= {"currency": "usd", "metadata": dict(metadata), "invoice_prefix": f"SB{index + 1:02d}A"}
                self.customers[customer["id"]] = customer
                ids.append(customer["id"])
            for owner, amount, description, brand, last4, ok in shapes.SEED_PAYMENTS:
                start += 3 * _DAY
                self.pay(
                    customer=ids[owner] if owner is not None else None,
                    amount=amount,
                    description=description,
                    brand=brand,
                    last4=last4,
                    ok=ok,
                )
            self.settle()
            for nickname, amount in shapes.SEED_PRICES:
                self.add_price(unit_amount=amount, currency="usd", nickname=nickname)
        finally:
            self._clock = clock
        # The latest successful payment is still pending, as a card payment is for a couple of days.
        latest = next(c for c in reversed(self.charges.values()) if c["status"] == "succeeded")
        self.available["usd"] -= latest["amount"]
        self.pending["usd"] += latest["amount"]


def _usd(amount: int) -> str:
    return f"${amount / 100:,.2f}"


def _page_token(offset: int) -> str:
    return "page_" + base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = token.removeprefix("page_")
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        kind, _, offset = decoded.partition(":")
        if kind == "offset" and offset.isdigit():
            return int(offset)
    except ValueError:
        pass
    raise StripeApiError(400, "Invalid page token.", param="page")
