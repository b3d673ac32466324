"""Stripe: customers, payments, refunds, invoices and payment links, over Stripe Connect OAuth or an API key."""

from connectors.base import Connector
from connectors.stripe.client import StripeClient
from connectors.stripe.manifest import MANIFEST
from connectors.stripe.tools import TOOLS

CONNECTOR = Connector(manifest=MANIFEST, make_client=StripeClient, tools=TOOLS)

__all__ = ["CONNECTOR"]
