"""Stripe through the hub's agent API, on SQLite and PostgreSQL, with the hub and the Stripe sandbox as real
processes on loopback: Connect OAuth asking only the strongest scope, every tool over REST, a refund made
once under retries, a token Stripe stopped honouring, and API-key connections (restricted keys) with
their refusals, rate limits and misses mapped to the hub's problems."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.harness import Hub, Sandbox, run_hub, run_sandbox

ALL_SCOPES = [
    "payments.customers.read",
    "payments.customers.write",
    "payments.charges.read",
    "payments.refunds.write",
    "payments.invoices.read",
    "payments.invoices.write",
    "payments.links.write",
]
STRIPE_TOOLS = {
    "stripe_customers_search",
    "stripe_customers_get",
    "stripe_customers_create",
    "stripe_payment_intents_list",
    "stripe_payment_intents_get",
    "stripe_charges_list",
    "stripe_charges_get",
    "stripe_refunds_create",
    "stripe_invoices_list",
    "stripe_invoices_create",
    "stripe_invoices_finalize",
    "stripe_invoices_send",
    "stripe_payment_links_create",
    "stripe_balance_get",
}


@pytest.fixture(scope="module")
def stripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("stripe", tmp_path_factory.mktemp("stripe")) as sandbox:
        yield sandbox


@pytest.fixture
def stripe_hub(tmp_path: Path, database_url: str, stripe: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"stripe": stripe}) as running:
        yield running


def _call(agent: httpx.Client, tool: str, /, *, via: str | None = None, **arguments: Any) -> httpx.Response:
    body: dict[str, Any] = {"arguments": arguments} | ({"connection": via} if via else {})
    return agent.post(f"/v1/tools/{tool}/call", json=body)


def _ok(agent: httpx.Client, tool: str, /, *, via: str | None = None, **arguments: Any) -> dict[str, Any]:
    answer = _call(agent, tool, via=via, **arguments)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def _requests(stripe: Sandbox) -> int:
    return int(stripe.stats()["api_requests"])


def _throttle(stripe: Sandbox, count: int, retry_after: int | None) -> None:
    httpx.post(f"{stripe.url}/_control/throttle", json={"count": count, "retry_after": retry_after}).raise_for_status()


def _key(stripe: Sandbox, permissions: list[str] | None = None) -> str:
    body = {} if permissions is None else {"permissions": permissions}
    key: str = httpx.post(f"{stripe.url}/_control/api-keys", json=body).json()["key"]
    return key


def _available(agent: httpx.Client) -> int:
    return sum(f["amount"] for f in _ok(agent, "stripe_balance_get")["available"] if f["currency"] == "usd")


def test_stripe_over_the_agent_api(stripe_hub: Hub, stripe: Sandbox) -> None:
    # One hub per database, two ways in: Connect OAuth, then pasted API keys.
    _connect_oauth_then_every_tool_over_rest(stripe_hub, stripe)
    _api_key_connections_with_restricted_keys(stripe_hub, stripe)
    # Nothing secret, and no customer's personal data, in the hub's log.
    log = stripe_hub.process.log_path.read_text()
    for secret in {*stripe.issued_tokens(), *stripe_hub.secrets}:
        assert secret not in log
    assert "ada@analytical-engines.example.com" not in log and "Grace Hopper" not in log and "revokedkey" not in log


def _connect_oauth_then_every_tool_over_rest(hub: Hub, stripe: Sandbox) -> None:
    # Reads alone ask Stripe for read_only; any write asks for read_write, and only that (never both).
    with hub.admin() as admin:
        reads = admin.get(
            "/connect/stripe", params={"name": "pay", "scopes": "payments.customers.read,payments.charges.read"}
        )
        writes = admin.get("/connect/stripe", params={"name": "pay", "scopes": ",".join(ALL_SCOPES)})
    for start, scope in ((reads, "read_only"), (writes, "read_write")):
        assert start.status_code == 302
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["scope"] == [scope] and query["response_type"] == ["code"]
        assert "code_challenge" not in query  # Stripe Connect has no PKCE
        assert urlsplit(start.headers["location"]).path == "/oauth/authorize"
    done = hub.connect("stripe", "pay", ",".join(ALL_SCOPES))
    assert done.status_code == 303, done.text
    with hub.admin() as admin:
        (connection,) = admin.get("/admin/api/connections").json()
    assert connection["status"] == "active" and connection["granted_scopes"] == ["read_write"]
    assert connection["account"].startswith("acct_") and connection["expires_at"] is None

    key = hub.create_agent("billing-bot")
    for scope in ALL_SCOPES:
        hub.grant("billing-bot", "pay", scope)
    with hub.agent(key) as agent:
        assert {t["name"] for t in agent.get("/v1/tools").json()["tools"]} == STRIPE_TOOLS
        _walk(agent, stripe)
        # Stripe stops honouring the token: the hub refreshes once and the call goes through.
        stripe.control("expire-tokens")
        refreshes = stripe.stats()["token_requests"].get("refresh_token", 0)
        assert _ok(agent, "stripe_balance_get")["available"]
        assert stripe.stats()["token_requests"]["refresh_token"] == refreshes + 1


def _walk(agent: httpx.Client, stripe: Sandbox) -> None:
    found = _ok(agent, "stripe_customers_search", query="email:'ada@analytical-engines.example.com'")
    (ada,) = found["customers"]
    assert ada["name"] == "Ada Lovelace" and ada["id"].startswith("cus_")
    assert _ok(agent, "stripe_customers_get", customer_id=ada["id"])["email"] == ada["email"]
    tag = uuid.uuid4().hex[:8]
    new = _ok(agent, "stripe_customers_create", email=f"grace.{tag}@navy.example.com", name="Grace Hopper")
    assert new["id"].startswith("cus_")

    intents = _ok(agent, "stripe_payment_intents_list", customer=ada["id"])["payment_intents"]
    assert intents and all(p["customer"] == ada["id"] for p in intents)
    paid = next(p for p in intents if p["status"] == "succeeded")
    assert (
        _ok(agent, "stripe_payment_intents_get", payment_intent_id=paid["id"])["latest_charge"] == paid["latest_charge"]
    )
    charges = _ok(agent, "stripe_charges_list", payment_intent=paid["id"])["charges"]
    charge = _ok(agent, "stripe_charges_get", charge_id=charges[0]["id"])
    assert set(charge["card"]) == {"brand", "last4"}

    # A refund the agent repeats with its idempotency key happens once.
    before, key = _available(agent), f"refund-{uuid.uuid4()}"
    first = _ok(
        agent,
        "stripe_refunds_create",
        payment_intent=paid["id"],
        amount=700,
        reason="requested_by_customer",
        idempotency_key=key,
    )
    again = _ok(
        agent,
        "stripe_refunds_create",
        payment_intent=paid["id"],
        amount=700,
        reason="requested_by_customer",
        idempotency_key=key,
    )
    assert first == again and first["status"] == "succeeded"
    assert _available(agent) == before - 700
    assert (
        _ok(agent, "stripe_charges_get", charge_id=charge["id"])["amount_refunded"] == charge["amount_refunded"] + 700
    )
    too_much = _call(agent, "stripe_refunds_create", charge=charge["id"], amount=10**7)
    assert too_much.status_code == 422 and too_much.json()["type"] == "invalid_arguments"
    assert "greater than unrefunded amount" in too_much.json()["detail"]

    draft = _ok(
        agent,
        "stripe_invoices_create",
        customer=new["id"],
        items=[
            {"description": "Consulting, March", "unit_amount": 15000},
            {"description": "Travel", "unit_amount": 2300},
        ],
    )
    assert (draft["status"], draft["total"]) == ("draft", 17300)
    final = _ok(agent, "stripe_invoices_finalize", invoice_id=draft["id"])
    assert final["status"] == "open" and final["hosted_invoice_url"].startswith("https://invoice.stripe.com/")
    assert _ok(agent, "stripe_invoices_send", invoice_id=draft["id"])["status"] == "open"
    assert [i["id"] for i in _ok(agent, "stripe_invoices_list", customer=new["id"])["invoices"]] == [draft["id"]]

    prices = httpx.get(f"{stripe.url}/v1/prices", headers={"Authorization": f"Bearer {_key(stripe)}"}).json()["data"]
    link = _ok(agent, "stripe_payment_links_create", price=prices[0]["id"], quantity=3)
    assert link["url"].startswith("https://buy.stripe.com/")
    missing = _call(agent, "stripe_customers_get", customer_id="cus_doesnotexist")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    bad = _call(agent, "stripe_customers_get", customer_id="../v1/balance")
    assert bad.status_code == 422 and bad.json()["type"] == "invalid_arguments"


def _api_key_connections_with_restricted_keys(hub: Hub, stripe: Sandbox) -> None:
    with hub.admin() as admin:
        wrong = admin.post(
            "/admin/api/connections",
            json={
                "name": "pay-key",
                "provider": "stripe",
                "api_key": "pk_test_publishablekey123",
                "scopes": ["payments.charges.read"],
            },
        )
        assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
        assert "rk_live_" in wrong.json()["detail"]  # the hint names what is wanted
        # A restricted key that can read but not refund, connected for reads and refunds.
        restricted = _key(stripe, ["rak_customer_read", "rak_charge_read", "rak_balance_read"])
        made = admin.post(
            "/admin/api/connections",
            json={
                "name": "pay-key",
                "provider": "stripe",
                "api_key": restricted,
                "scopes": ["payments.customers.read", "payments.charges.read", "payments.refunds.write"],
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["granted_scopes"] == ["api_key"] and restricted not in made.text
        full = admin.post(
            "/admin/api/connections",
            json={
                "name": "pay-full",
                "provider": "stripe",
                "api_key": _key(stripe),
                "scopes": ["payments.refunds.write"],
            },
        )
        assert full.status_code == 201, full.text
        stale = admin.post(
            "/admin/api/connections",
            json={
                "name": "pay-stale",
                "provider": "stripe",
                "api_key": "sk_test_revokedkey0000000",
                "scopes": ["payments.charges.read"],
            },
        )
        assert stale.status_code == 201
    hub.secrets.add(restricted)
    agent_key = hub.create_agent("support-bot")
    for scope in ("payments.customers.read", "payments.charges.read", "payments.refunds.write"):
        hub.grant("support-bot", "pay-key", scope)
    hub.grant("support-bot", "pay-full", "payments.refunds.write")
    hub.grant("support-bot", "pay-stale", "payments.charges.read")
    with hub.agent(agent_key) as agent:
        found = _ok(agent, "stripe_customers_search", query="name~'Lovelace'")
        assert found["customers"][0]["name"] == "Ada Lovelace"
        charges = _ok(agent, "stripe_charges_list", via="pay-key", limit=100)["charges"]
        charge = next(c for c in charges if c["status"] == "succeeded" and not c["refunded"])

        # Stripe refuses what the key lacks; the agent learns which permission the connection needs.
        denied = _call(agent, "stripe_refunds_create", via="pay-key", charge=charge["id"], amount=1)
        assert denied.status_code == 403 and denied.json()["type"] == "scope_denied"
        assert denied.json()["missing_provider_scopes"] == ["rak_refund_write"]

        # A throttled read is retried within the budget; a throttled write is not retried by the hub: it
        # is retried inside the connector with its idempotency key when Stripe's wait is short, else refused.
        _throttle(stripe, 2, 0)
        before = _requests(stripe)
        assert _ok(agent, "stripe_balance_get", via="pay-key")["available"]
        assert _requests(stripe) == before + 3
        _throttle(stripe, 1, 7)
        before = _requests(stripe)
        limited = _call(agent, "stripe_refunds_create", via="pay-full", charge=charge["id"], amount=100)
        assert limited.status_code == 429 and limited.json()["type"] == "rate_limited"
        assert limited.headers["retry-after"] == "7" and _requests(stripe) == before + 1
        _throttle(stripe, 1, 0)
        before = _requests(stripe)
        assert _ok(agent, "stripe_refunds_create", via="pay-full", charge=charge["id"], amount=100)["amount"] == 100
        assert _requests(stripe) == before + 2
        after = _ok(agent, "stripe_charges_get", via="pay-key", charge_id=charge["id"])
        assert after["amount_refunded"] == charge["amount_refunded"] + 100  # refunded once

        # A key Stripe does not know: there is nothing to refresh, so the connection needs an admin.
        dead = _call(agent, "stripe_balance_get", via="pay-stale")
        assert dead.status_code == 409 and dead.json()["type"] == "connection_needs_reauth"
    with hub.admin() as admin:
        statuses = {c["name"]: c["status"] for c in admin.get("/admin/api/connections").json()}
    assert statuses == {"pay": "active", "pay-key": "active", "pay-full": "active", "pay-stale": "needs_reauth"}


def test_the_hub_mounted_sandbox_serves_both_stripe_hosts(tmp_path: Path) -> None:
    """In sandbox mode (`switchboard demo`) connect.stripe.com and api.stripe.com both map onto
    `<hub>/sandbox/stripe`: the consent page, the token exchange and the API all answer there."""
    with run_hub(
        tmp_path, f"sqlite:///{tmp_path / 'demo.db'}", providers={}, extra_env={"SWITCHBOARD_SANDBOX": "true"}
    ) as hub:
        with hub.admin() as admin:
            start = admin.get("/connect/stripe", params={"name": "demo-pay", "scopes": "payments.charges.read"})
        assert start.headers["location"].startswith(f"{hub.url}/sandbox/stripe/oauth/authorize?")
        assert hub.connect("stripe", "demo-pay", "payments.charges.read,payments.refunds.write").status_code == 303
        key = hub.create_agent("demo-bot")
        hub.grant("demo-bot", "demo-pay", "payments.charges.read")
        hub.grant("demo-bot", "demo-pay", "payments.refunds.write")
        with hub.agent(key) as agent:
            charge = next(
                c for c in _ok(agent, "stripe_charges_list", limit=100)["charges"] if c["status"] == "succeeded"
            )
            assert _ok(agent, "stripe_refunds_create", charge=charge["id"], amount=50)["status"] == "succeeded"
            assert _ok(agent, "stripe_balance_get")["pending"]
