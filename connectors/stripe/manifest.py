"""Stripe's OAuth (Connect) and API facts.

Two ways in. Stripe Connect OAuth: the authorize page lives on connect.stripe.com, the code is exchanged
there with the platform's secret key as `client_secret`, no PKCE; the token answer names the connected
account (`stripe_user_id`) and the one scope granted, and its access token never expires (no `expires_in`),
so the hub refreshes only when Stripe answers 401. Or a pasted API key, best a restricted key (`rk_…`)
limited to what the chosen hub scopes need.

Stripe has two OAuth scopes, `read_only` < `read_write`; a connection asks only for the strongest its hub
scopes need (`exclusive_scopes`).
"""

from connectors.base import ApiKeyMode, Manifest

__all__ = ["API_VERSION", "MANIFEST"]

# The API version the published spec in ../shared/specs describes (its `info.version`; the file name carries
# the date of the spec snapshot, 2023-09-12, which is not an API version Stripe would accept). Pinned on
# every request, so responses keep the shape the tools were written against whatever the account's default.
API_VERSION = "2023-08-16"

_READ = ("read_only",)
_WRITE = ("read_write",)

MANIFEST = Manifest(
    name="stripe",
    display_name="Stripe",
    settings_key="stripe",
    authorize_url="https://connect.stripe.com/oauth/authorize",
    token_url="https://connect.stripe.com/oauth/token",
    api_base="https://api.stripe.com",
    scope_map={
        "payments.customers.read": _READ,
        "payments.customers.write": _WRITE,
        "payments.charges.read": _READ,
        "payments.refunds.write": _WRITE,
        "payments.invoices.read": _READ,
        "payments.invoices.write": _WRITE,
        "payments.links.write": _WRITE,
    },
    token_endpoint_auth_method="client_secret_post",
    pkce=False,
    exclusive_scopes=("read_only", "read_write"),
    account_path="stripe_user_id",
    api_key=ApiKeyMode(
        pattern=r"(rk|sk)_(test|live)_[A-Za-z0-9]{10,}",
        hint=(
            "a restricted key (rk_live_… or rk_test_…) allowing only what the chosen scopes need; "
            "a secret key (sk_…) works but grants the whole account"
        ),
    ),
)
