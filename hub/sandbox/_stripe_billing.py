"""Stripe invoicing kept in memory: draft invoices, invoice items, finalizing and sending.

    draft ──finalize──▶ open ──send (emails the customer; stays open)──▶ …paid
      ▲ invoice items are added only while draft; a finalized invoice with nothing due is paid at once.

Pure data like `_stripe_store`, sharing its account (customers, ids, clock).
"""

from typing import Any

from hub.sandbox import _stripe_shapes as shapes
from hub.sandbox._stripe_params import Params, StripeApiError, missing
from hub.sandbox._stripe_store import StripeStore

__all__ = ["Billing"]

_DAY = 86_400
_COLLECTION = ("charge_automatically", "send_invoice")


class Billing:
    def __init__(self, store: StripeStore) -> None:
        self._store = store
        self.invoices: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        # Invoice emails "sent" to customers, oldest first: (invoice id, customer email).
        self.outbox: list[tuple[str, str | None]] = []
        self._seed()

    def get(self, invoice_id: str, *, param: str | None = None) -> dict[str, Any]:
        return self._store.get(self.invoices, "invoice", invoice_id, param=param)

    def list(self, params: Params) -> dict[str, Any]:
        customer, status = (
            params.string("customer"),
            params.choice("status", ("draft", "open", "paid", "uncollectible", "void")),
        )
        chosen = [
            i
            for i in self.invoices.values()
            if (customer is None or i["customer"] == customer) and (status is None or i["status"] == status)
        ]
        return self._store.page(chosen, params, kind="invoice", url="/v1/invoices")

    def create(self, params: Params) -> dict[str, Any]:
        store = self._store
        customer = store.get(
            store.customers, "customer", params.string("customer", required=True) or "", param="customer"
        )
        method = params.choice("collection_method", _COLLECTION) or "charge_automatically"
        days = params.integer("days_until_due", minimum=1)
        due = params.integer("due_date", minimum=1)
        if method == "charge_automatically" and (days is not None or due is not None):
            raise StripeApiError(
                400,
                "Invoices with collection_method=charge_automatically cannot have a due date.",
                param="days_until_due" if days is not None else "due_date",
            )
        if method == "send_invoice" and days is None and due is None:
            raise missing("days_until_due")
        currency = (params.string("currency") or customer["currency"] or "usd").lower()
        created = store.now()
        invoice = shapes.invoice(id=store.new_id("in"), created=created, customer=customer, currency=currency)
        invoice |= {
            "collection_method": method,
            "auto_advance": params.boolean("auto_advance")
            if params.has("auto_advance")
            else method == "charge_automatically",
            "description": params.string("description", max_length=1500),
            "footer": params.string("footer"),
            "metadata": params.metadata(),
            "due_date": due or (created + days * _DAY if days else None),
        }
        customer["currency"] = customer["currency"] or currency
        self.invoices[invoice["id"]] = invoice
        behaviour = params.choice("pending_invoice_items_behavior", ("exclude", "include", "include_and_require"))
        if behaviour in ("include", "include_and_require"):
            pending = [i for i in self.items.values() if i["customer"] == customer["id"] and i["invoice"] is None]
            if behaviour == "include_and_require" and not pending:
                raise StripeApiError(400, "Nothing to invoice for customer", code="invoice_no_customer_line_items")
            for item in pending:
                self._attach(invoice, item)
        return invoice

    def create_item(self, params: Params) -> dict[str, Any]:
        store = self._store
        customer = store.get(
            store.customers, "customer", params.string("customer", required=True) or "", param="customer"
        )
        invoice = None
        if params.has("invoice"):
            invoice = self.get(params.string("invoice") or "", param="invoice")
            if invoice["customer"] != customer["id"]:
                raise StripeApiError(400, "The invoice belongs to a different customer.", param="invoice")
            if invoice["status"] != "draft":
                raise StripeApiError(
                    400,
                    "You can only add invoice items to draft invoices.",
                    code="invoice_not_editable",
                    param="invoice",
                )
        amount, unit_amount = params.integer("amount"), params.integer("unit_amount")
        quantity = params.integer("quantity", minimum=0)
        price_id = params.string("price")
        if sum(x is not None for x in (amount, unit_amount, price_id)) != 1:
            raise StripeApiError(400, "Give exactly one of amount, unit_amount or price.", param="amount")
        currency = (
            params.string("currency") or (invoice or {}).get("currency") or customer["currency"] or "usd"
        ).lower()
        if invoice is not None and currency != invoice["currency"]:
            raise StripeApiError(
                400,
                f"The currency ({currency}) does not match the invoice's ({invoice['currency']}).",
                param="currency",
            )
        if price_id is not None:
            price = store.get(store.prices, "price", price_id, param="price")
        else:
            unit = unit_amount if unit_amount is not None else amount
            assert unit is not None
            price = store.add_price(unit_amount=unit, currency=currency, nickname=None)
        if amount is not None:
            quantity = 1
        item = shapes.invoice_item(
            id=store.new_id("ii"),
            created=store.now(),
            customer=customer["id"],
            invoice=None,
            quantity=1 if quantity is None else quantity,
            description=params.string("description"),
            price=price,
        )
        item["metadata"] = params.metadata()
        self.items[item["id"]] = item
        if invoice is not None:
            self._attach(invoice, item)
        return item

    def finalize(self, invoice_id: str, params: Params) -> dict[str, Any]:
        invoice = self.get(invoice_id)
        if invoice["status"] != "draft":
            raise StripeApiError(
                400,
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_not_editable",
            )
        if params.has("auto_advance"):
            invoice["auto_advance"] = params.boolean("auto_advance")
        store = self._store
        customer = store.customers[invoice["customer"]]
        now = store.now()
        invoice |= {
            "status": "open",
            "number": f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
            "hosted_invoice_url": f"https://invoice.stripe.com/i/{store.account}/test_{invoice_id[3:]}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/{store.account}/test_{invoice_id[3:]}/pdf",
            "effective_at": now,
            "status_transitions": {**invoice["status_transitions"], "finalized_at": now},
        }
        customer["next_invoice_sequence"] += 1
        if invoice["amount_due"] <= 0:
            self._mark_paid(invoice)
        return invoice

    def send(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.get(invoice_id)
        if invoice["collection_method"] != "send_invoice":
            raise StripeApiError(
                400,
                "You can only manually send an invoice if its collection method is 'send_invoice'.",
                param="invoice",
            )
        if invoice["status"] == "draft":
            raise StripeApiError(400, "You can't send a draft invoice; finalize it first.", code="invoice_not_editable")
        if invoice["status"] != "open":
            raise StripeApiError(400, f"You can't send an invoice that is {invoice['status']}.")
        self.outbox.append((invoice_id, invoice["customer_email"]))
        return invoice

    # -- internals -----------------------------------------------------------------------------------------

    def _attach(self, invoice: dict[str, Any], item: dict[str, Any]) -> None:
        item["invoice"] = invoice["id"]
        line = shapes.line_item(
            id="il_" + item["id"][3:],
            item=item["id"],
            created=item["date"],
            amount=item["amount"],
            quantity=item["quantity"],
            description=item["description"],
            price=item["price"],
        )
        lines = invoice["lines"]
        lines["data"].append(line)
        total = sum(entry["amount"] for entry in lines["data"])
        invoice |= {
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "amount_due": max(total, 0),
            "amount_remaining": max(total, 0),
        }

    def _mark_paid(self, invoice: dict[str, Any]) -> None:
        now = self._store.now()
        invoice |= {
            "status": "paid",
            "paid": True,
            "amount_paid": invoice["amount_due"],
            "amount_remaining": 0,
            "status_transitions": {**invoice["status_transitions"], "paid_at": now},
        }

    def _seed(self) -> None:
        """One paid invoice, so lists have history: the second seeded customer's team plan."""
        store = self._store
        customer = list(store.customers)[1]
        draft = self.create(
            Params(
                {"customer": customer, "collection_method": "send_invoice", "days_until_due": "30"},
                ("customer", "collection_method", "days_until_due"),
            )
        )
        self.create_item(
            Params(
                {
                    "customer": customer,
                    "invoice": draft["id"],
                    "unit_amount": "12000",
                    "quantity": "1",
                    "description": "Team plan, 5 seats",
                },
                ("customer", "invoice", "unit_amount", "quantity", "description"),
            )
        )
        self.finalize(draft["id"], Params({}, ()))
        self._mark_paid(draft)
