"""The Stripe client's error mapping, unit by unit: every stripe-python exception becomes one connector
error with a safe message, and the SDK client is configured as the hub needs it."""

import re

import pytest
import requests
import stripe
from requests.structures import CaseInsensitiveDict

from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from connectors.stripe.client import StripeClient, translate
from connectors.stripe.manifest import API_VERSION, MANIFEST


def _body(message: str, **fields: str) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", **fields}}


def _connection_error(cause: Exception) -> stripe.APIConnectionError:
    try:
        try:
            raise cause
        except Exception as exc:
            raise stripe.APIConnectionError("Unexpected error communicating with Stripe") from exc
    except stripe.APIConnectionError as wrapped:
        return wrapped


CASES: list[tuple[stripe.StripeError, type[ConnectorError], str]] = [
    (
        stripe.AuthenticationError("Invalid API Key provided: sk_test_****abcd", http_status=401),
        ProviderAuthExpired,
        "refused",
    ),
    (
        stripe.PermissionError(
            "x",
            http_status=403,
            json_body=_body(
                "The provided key 'rk_test_****wxyz' does not have the required permissions for this endpoint on "
                "account 'acct_1'. Having the 'rak_refund_write' permission would allow this request to continue."
            ),
        ),
        ProviderForbidden,
        "needs rak_refund_write",
    ),
    (
        stripe.InvalidRequestError(
            "x",
            "id",
            code="resource_missing",
            http_status=404,
            json_body=_body("No such customer: 'cus_1'", code="resource_missing"),
        ),
        ProviderNotFound,
        "No such customer: 'cus_1'",
    ),
    (
        stripe.InvalidRequestError(
            "x", "price", code="resource_missing", http_status=400, json_body=_body("No such price: 'price_1'")
        ),
        ProviderNotFound,
        "No such price",
    ),
    (
        stripe.InvalidRequestError("x", "amount", http_status=400, json_body=_body("Invalid integer: ten")),
        ProviderRejected,
        "Stripe rejected the request: Invalid integer: ten",
    ),
    (
        stripe.CardError("x", None, "card_declined", http_status=402, json_body=_body("Your card was declined.")),
        ProviderRejected,
        "Your card was declined.",
    ),
    (
        stripe.IdempotencyError(
            "x",
            http_status=400,
            json_body=_body("Keys for idempotent requests can only be used with the same parameters"),
        ),
        ProviderRejected,
        "same parameters",
    ),
    (
        stripe.APIError("conflict", http_status=409, json_body=_body("Another request is in progress")),
        ProviderRejected,
        "in progress",
    ),
    # prism's answer to a request that breaks the spec: a 422 whose body is no Stripe error; never echoed.
    (
        stripe.APIError("Invalid response object from API: '{\"secret\": 1}'", http_status=422),
        ProviderRejected,
        "rejected",
    ),
    (
        stripe.RateLimitError("slow down", http_status=429, headers=CaseInsensitiveDict({"retry-after": "3"})),
        ProviderRateLimited,
        "rate limit",
    ),
    (stripe.APIError("boom", http_status=503), ProviderUnavailable, "Stripe answered 503"),
    (_connection_error(requests.ConnectionError("refused")), ProviderUnavailable, "could not be reached"),
    (_connection_error(requests.ReadTimeout("slow")), ProviderTimeout, "in time"),
    (stripe.oauth_error.InvalidGrantError("invalid_grant", "expired", http_status=400), ProviderRejected, "rejected"),
]


@pytest.mark.parametrize(
    ("error", "expected", "says"), CASES, ids=[type(c[0]).__name__ + str(c[0].http_status) for c in CASES]
)
def test_each_stripe_error_maps_to_one_connector_error(
    error: stripe.StripeError, expected: type[ConnectorError], says: str
) -> None:
    mapped = translate(error)
    assert type(mapped) is expected
    assert says in mapped.message
    assert "sk_test" not in mapped.message and "rk_test" not in mapped.message and "secret" not in mapped.message


def test_retry_after_and_missing_scopes_are_carried() -> None:
    limited = translate(
        stripe.RateLimitError("slow", http_status=429, headers=CaseInsensitiveDict({"Retry-After": "3"}))
    )
    assert isinstance(limited, ProviderRateLimited) and limited.retry_after == 3.0
    connect = translate(
        stripe.PermissionError(
            "x",
            http_status=403,
            json_body=_body(
                "This application does not have ... The 'read_write' scope would allow this request to continue."
            ),
        )
    )
    assert isinstance(connect, ProviderForbidden) and connect.missing_scopes == ("read_write",)


def test_keys_in_stripe_messages_are_masked() -> None:
    leaked = translate(
        stripe.InvalidRequestError(
            "x", None, http_status=400, json_body=_body("Bad key sk_live_abcdef123456 and rt_test_zz9")
        )
    )
    assert "abcdef123456" not in leaked.message and "sk_live_***" in leaked.message


def test_one_sdk_client_per_connection_pinned_and_pooled() -> None:
    first = StripeClient(access_token="sk_test_first000000", api_base="http://127.0.0.1:9/", timeout=3)
    second = StripeClient(access_token="sk_test_second00000", api_base="http://127.0.0.1:9", timeout=3)
    try:
        options = first.sdk._requestor._options
        assert options.api_key == "sk_test_first000000" and options.stripe_version == API_VERSION
        assert options.base_addresses["api"] == "http://127.0.0.1:9" and options.max_network_retries == 2
        assert second.sdk._requestor._options.api_key == "sk_test_second00000"  # nothing global
        assert stripe.api_key is None
        assert first.http is not second.http and first.v1.customers is first.v1.customers  # services built once
    finally:
        first.close()
        second.close()


def test_manifest_asks_only_the_strongest_scope_and_takes_restricted_keys() -> None:
    assert MANIFEST.provider_scopes(["payments.customers.read", "payments.charges.read"]) == ["read_only"]
    assert MANIFEST.provider_scopes(["payments.customers.read", "payments.refunds.write"]) == ["read_write"]
    assert MANIFEST.pkce is False and MANIFEST.account_of({"stripe_user_id": "acct_123"}) == "acct_123"
    assert MANIFEST.api_key is not None
    for good in ("rk_live_51HqLyjWDarjtT1zd", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"):
        assert re.fullmatch(MANIFEST.api_key.pattern, good)
    for bad in (
        "pk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_short",
        "rk_prod_4eC39HqLyjWDarjt",
        "sk_test_abc$defghijk",
    ):
        assert not re.fullmatch(MANIFEST.api_key.pattern, bad)
