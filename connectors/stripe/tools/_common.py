"""What the Stripe tool modules share: id and paging argument types, idempotency keys, small shapers."""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from connectors.errors import ProviderNotFound
from connectors.stripe.client import StripeClient

__all__ = [
    "After",
    "CustomerId",
    "IdempotencyKey",
    "InvoiceId",
    "Limit",
    "Money",
    "PriceId",
    "found",
    "id_of",
    "iso",
    "key_for",
    "metadata",
    "next_cursor",
]

# Stripe ids are a type prefix, `_`, then letters and digits: nothing else can reach a URL path from an argument.
CustomerId = Annotated[
    str, Field(description="The Stripe customer id, e.g. 'cus_NffrFeUfNV2Hib'.", pattern=r"^cus_[A-Za-z0-9]{1,100}$")
]
InvoiceId = Annotated[
    str, Field(description="The Stripe invoice id, e.g. 'in_1MtHbELkdIwHu7ix'.", pattern=r"^in_[A-Za-z0-9]{1,100}$")
]
PriceId = Annotated[
    str, Field(description="A Stripe price id, e.g. 'price_1MoBy5LkdIwHu7ix'.", pattern=r"^price_[A-Za-z0-9]{1,100}$")
]
Limit = Annotated[int, Field(description="Results per page, 1 to 100.", ge=1, le=100)]
After = Annotated[
    str | None, Field(description="The `next_cursor` of the previous page, for the next one.", max_length=500)
]
IdempotencyKey = Annotated[
    str | None,
    Field(
        description=(
            "Optional: a unique string of your choosing (e.g. a UUID). If a call fails or times out and you "
            "cannot tell whether it took effect, repeat it with the same key and the same arguments: Stripe "
            "acts at most once and answers with the first result. Keys expire after 24 hours."
        ),
        min_length=8,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
    ),
]
Money = Annotated[
    int,
    Field(
        description=("An amount in the currency's smallest unit: cents for usd/eur (2500 = 25.00), whole yen for jpy."),
    ),
]


def key_for(given: str | None) -> str:
    """The key for this call: the agent's own, or a fresh one so the SDK's retries stay safe."""
    return given or f"switchboard-{uuid.uuid4()}"


def iso(timestamp: Any) -> str | None:
    """A Stripe Unix timestamp as ISO 8601 UTC, the form models read best."""
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_of(value: Any) -> str | None:
    """A related object's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


async def found(client: StripeClient, retrieve: Callable[..., Any], object_id: str) -> dict[str, Any] | None:
    """One object, for a facts resolver: None when Stripe has no such object, so what it would tell stays
    unknown and the policy refuses the call, as it refuses one outside the allow-list."""
    try:
        return await client.call(retrieve, object_id)
    except ProviderNotFound:
        return None


def metadata(value: Any) -> dict[str, str]:
    """The object's metadata (Stripe caps it at 50 keys of 500 characters)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k)[:40]: str(v)[:500] for k, v in list(value.items())[:50]}


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """Where the next page of a Stripe list starts: after the last object of this one, when there is more."""
    data = body.get("data") or []
    if not body.get("has_more") or not data:
        return None
    return id_of(data[-1])
