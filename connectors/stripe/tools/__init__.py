"""Stripe tools, one module per resource. Each returns only the fields a model needs, ids kept, amounts in
the currency's smallest unit, times as ISO 8601, with a cursor for more."""

from connectors.base import Tool, collect_tools
from connectors.stripe.tools import customers, invoices, payment_links, payments, refunds

__all__ = ["TOOLS"]

TOOLS: tuple[Tool, ...] = tuple(
    t for module in (customers, payments, refunds, invoices, payment_links) for t in collect_tools(module)
)
