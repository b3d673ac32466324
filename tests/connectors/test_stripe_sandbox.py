"""The Stripe sandbox behaves like Stripe: Connect OAuth (consent, code exchange with the platform's secret
key, refresh), keys and permissions, form bodies in bracket notation, the search language, idempotency,
paging and Stripe's error shapes. In process, through Starlette's test client."""

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from hub.sandbox import _stripe_oauth
from hub.sandbox._stripe_params import StripeApiError, decode
from hub.sandbox.stripe import StripeSandbox

CLIENT_ID, SECRET = "ca_sandboxplatform", "sk_test_platformsecret0001"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def sandbox() -> StripeSandbox:
    return StripeSandbox(client_id=CLIENT_ID, client_secret=SECRET)


@pytest.fixture
def http(sandbox: StripeSandbox) -> Iterator[TestClient]:
    with TestClient(sandbox.app, follow_redirects=False) as client:
        yield client


def _authorize(http: TestClient, scope: str = "read_write", **extra: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "scope": scope,
        "redirect_uri": REDIRECT,
        "state": "st",
        **extra,
    }
    page = http.get("/oauth/authorize", params=query)
    assert page.status_code == 200, page.text
    assert f"<code>{scope}</code>" in page.text and 'value="approve"' in page.text
    answer = http.post("/oauth/authorize", data={**query, "decision": "approve"})
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def _exchange(http: TestClient, code: str, **auth: str) -> Any:
    return http.post(
        "/oauth/token", data={"grant_type": "authorization_code", "code": code, **(auth or {"client_secret": SECRET})}
    )


def _token(http: TestClient, scope: str = "read_write") -> dict[str, Any]:
    answer = _exchange(http, _authorize(http, scope)["code"])
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_connect_consent_then_code_exchange(sandbox: StripeSandbox, http: TestClient) -> None:
    redirect = _authorize(http, "read_only")
    assert redirect["state"] == "st" and redirect["scope"] == "read_only" and redirect["code"].startswith("ac_")
    token = _exchange(http, redirect["code"])
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert set(body) == {
        "access_token",
        "livemode",
        "refresh_token",
        "token_type",
        "stripe_publishable_key",
        "stripe_user_id",
        "scope",
    }
    assert (
        body["scope"] == "read_only" and body["stripe_user_id"] == sandbox.store.account and body["livemode"] is False
    )
    assert body["access_token"].startswith("sk_test_") and body["refresh_token"].startswith("rt_")
    assert "expires_in" not in body  # Connect tokens do not expire
    again = _exchange(http, redirect["code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code works once


def test_the_platform_authenticates_with_its_secret_key_only(http: TestClient) -> None:
    code = _authorize(http)["code"]
    wrong = _exchange(http, code, client_secret="sk_test_someoneelse")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    basic = base64.b64encode(f"{SECRET}:".encode()).decode()
    fresh = _authorize(http)["code"]
    by_basic = http.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": fresh},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert by_basic.status_code == 200 and by_basic.json()["scope"] == "read_write"
    assert http.post("/oauth/token", data={"client_secret": SECRET}).json()["error"] == "invalid_request"


def test_consent_refuses_bad_requests_and_reports_a_denial(http: TestClient) -> None:
    base = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": "st"}
    for broken in (
        {"client_id": "ca_other"},
        {"scope": "admin"},
        {"response_type": "token"},
        {"redirect_uri": "/relative"},
    ):
        assert http.get("/oauth/authorize", params={**base, **broken}).status_code == 400
    assert "read_only" in http.get("/oauth/authorize", params=base).text  # Stripe's default scope
    denied = http.post("/oauth/authorize", data={**base, "decision": "deny"})
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st"]


def test_refresh_keeps_or_narrows_the_scope_and_revoke_all_ends_it(sandbox: StripeSandbox, http: TestClient) -> None:
    token = _token(http)
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_secret": SECRET}
    renewed = http.post("/oauth/token", data=refresh).json()
    assert renewed["access_token"] != token["access_token"] and renewed["refresh_token"] == token["refresh_token"]
    narrowed = http.post("/oauth/token", data={**refresh, "scope": "read_only"}).json()
    assert narrowed["scope"] == "read_only"
    assert sandbox.stats.token_requests == {"authorization_code": 1, "refresh_token": 2}
    http.post("/_control/revoke-all")
    assert http.post("/oauth/token", data=refresh).json()["error"] == "invalid_grant"


def test_rotating_refresh_tokens_die_after_one_use() -> None:
    rotating = StripeSandbox(client_id=CLIENT_ID, client_secret=SECRET, rotate_refresh_tokens=True)
    with TestClient(rotating.app, follow_redirects=False) as http:
        token = _token(http)
        refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_secret": SECRET}
        renewed = http.post("/oauth/token", data=refresh).json()
        assert renewed["refresh_token"] != token["refresh_token"]
        assert http.post("/oauth/token", data=refresh).json()["error"] == "invalid_grant"


def test_keys_scopes_and_permissions(sandbox: StripeSandbox, http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = http.get("/v1/balance")
    assert missing.status_code == 401 and "did not provide an API key" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"] == 'Basic realm="Stripe"'
    unknown = http.get("/v1/balance", headers=_auth("sk_test_nosuchkey1234"))
    assert unknown.status_code == 401 and unknown.json()["error"]["message"].endswith("****1234")
    assert "nosuchkey" not in unknown.text

    reader = _token(http, "read_only")["access_token"]
    assert http.get("/v1/balance", headers=_auth(reader)).status_code == 200
    refused = http.post("/v1/customers", data={"email": "x@example.com"}, headers=_auth(reader))
    assert refused.status_code == 403 and "The 'read_write' scope would allow" in refused.json()["error"]["message"]

    restricted = http.post("/_control/api-keys", json={"permissions": ["rak_customer_write"]}).json()["key"]
    assert restricted.startswith("rk_test_")
    assert http.get("/v1/customers", headers=_auth(restricted)).status_code == 200  # write includes read
    lacking = http.get("/v1/charges", headers=_auth(restricted))
    assert lacking.status_code == 403 and "'rak_charge_read' permission" in lacking.json()["error"]["message"]
    assert restricted[8:-4] not in lacking.text
    secret = http.post("/_control/api-keys", json={}).json()["key"]
    basic = base64.b64encode(f"{secret}:".encode()).decode()
    assert http.get("/v1/charges", headers={"Authorization": f"Basic {basic}"}).status_code == 200

    # Connect tokens do not expire on their own; they stop working when access ends.
    writer = _token(http)["access_token"]
    monkeypatch.setattr(_stripe_oauth, "_clock", lambda: 10.0**12)
    assert http.get("/v1/balance", headers=_auth(writer)).status_code == 200
    sandbox.expire_access_tokens()
    expired = http.get("/v1/balance", headers=_auth(writer))
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "api_key_expired"
    assert http.get("/v1/balance", headers=_auth(secret)).status_code == 200  # API keys are not Connect tokens


def test_issued_tokens_and_keys_are_listed_for_leak_scans(http: TestClient) -> None:
    token = _token(http)
    key = http.post("/_control/api-keys", json={}).json()["key"]
    issued = http.get("/_control/issued-tokens").json()["tokens"]
    assert {token["access_token"], token["refresh_token"], key} <= set(issued)


def test_bracket_notation_decodes_like_stripe() -> None:
    pairs = [
        ("line_items[0][price]", "price_a"),
        ("line_items[1][price]", "price_b"),
        ("line_items[0][quantity]", "2"),
        ("metadata[plan]", "pro"),
        ("expand[]", "customer"),
        ("expand[]", "invoice"),
        ("amount", "100"),
    ]
    assert decode(pairs) == {
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"plan": "pro"},
        "expand": ["customer", "invoice"],
        "amount": "100",
    }
    with pytest.raises(StripeApiError):
        decode([("a", "1"), ("a[b]", "2")])


def test_parameters_are_checked_as_stripe_checks_them(http: TestClient) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    unknown = http.post("/v1/customers", data={"email": "a@example.com", "colour": "blue"}, headers=key).json()["error"]
    assert (unknown["code"], unknown["param"], unknown["type"]) == (
        "parameter_unknown",
        "colour",
        "invalid_request_error",
    )
    nested = http.post(
        "/v1/payment_links", data={"line_items[0][price]": "price_x", "line_items[0][colour]": "red"}, headers=key
    )
    assert nested.json()["error"]["param"] == "line_items[0][colour]"
    missing = http.post("/v1/payment_links", data={}, headers=key).json()["error"]
    assert (missing["code"], missing["message"]) == ("parameter_missing", "Missing required param: line_items.")
    integer = http.post("/v1/refunds", data={"charge": "ch_x", "amount": "1.5"}, headers=key).json()["error"]
    assert (integer["code"], integer["param"]) == ("parameter_invalid_integer", "amount")
    assert http.get("/v1/charges", params={"limit": "101"}, headers=key).status_code == 400
    lost = http.get("/v1/nothing", headers=key)
    assert lost.status_code == 404 and lost.json()["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/nothing)"
    )
    answer = http.get("/v1/balance", headers={**key, "Stripe-Version": "2023-08-16"})
    assert answer.headers["stripe-version"] == "2023-08-16" and answer.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("email:'ADA@analytical-engines.example.com'", {"Ada Lovelace"}),
        ("name~'ing'", {"Alan Turing"}),
        ('metadata["plan"]:"team" OR name:\'Alan Turing\'', {"Grace Hopper", "Barbara Liskov", "Alan Turing"}),
        ("metadata['plan']:'pro' AND -name~'ada'", {"Katherine Johnson"}),
        ("phone:'+1 555 0199'", {"Grace Hopper"}),
    ],
)
def test_the_search_language_subset(http: TestClient, query: str, names: set[str]) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    answer = http.get("/v1/customers/search", params={"query": query}, headers=key)
    assert answer.status_code == 200, answer.text
    assert {c["name"] for c in answer.json()["data"]} == names


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("email:ada", "unable to parse"),
        ("name~'ad'", "at least 3 characters"),
        ("name:'a' AND email:'b' OR phone:'c'", "may not combine"),
        ("colour:'red'", "unsupported search field"),
        ("created>'yesterday'", "numeric fields"),
    ],
)
def test_bad_queries_are_stripes_400(http: TestClient, query: str, says: str) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    answer = http.get("/v1/customers/search", params={"query": query}, headers=key)
    assert (
        answer.status_code == 400
        and says in answer.json()["error"]["message"]
        and answer.json()["error"]["param"] == "query"
    )


def test_search_and_lists_page(http: TestClient) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    first = http.get("/v1/customers/search", params={"query": "created>0", "limit": 4}, headers=key).json()
    assert first["has_more"] and first["next_page"]
    rest = http.get(
        "/v1/customers/search", params={"query": "created>0", "page": first["next_page"]}, headers=key
    ).json()
    assert not rest["has_more"] and rest["next_page"] is None
    assert len({c["id"] for c in first["data"] + rest["data"]}) == 6
    assert (
        http.get("/v1/customers/search", params={"query": "created>0", "page": "bogus!"}, headers=key).status_code
        == 400
    )

    everything = http.get("/v1/charges", params={"limit": 100}, headers=key).json()["data"]
    page = http.get("/v1/charges", params={"limit": 2, "starting_after": everything[1]["id"]}, headers=key).json()
    assert [c["id"] for c in page["data"]] == [c["id"] for c in everything[2:4]] and page["has_more"]
    back = http.get("/v1/charges", params={"limit": 2, "ending_before": everything[2]["id"]}, headers=key).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in everything[:2]] and not back["has_more"]
    gone = http.get("/v1/charges", params={"starting_after": "ch_gone"}, headers=key).json()["error"]
    assert (gone["code"], gone["param"]) == ("resource_missing", "starting_after")


def test_idempotency_keys_replay_and_refuse_other_parameters(sandbox: StripeSandbox, http: TestClient) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    charge = next(c for c in reversed(sandbox.store.charges.values()) if c["status"] == "succeeded")
    body = urlencode({"charge": charge["id"], "amount": 300})
    first = http.post("/v1/refunds", content=body, headers={**key, **FORM, "Idempotency-Key": "k-1"})
    replay = http.post("/v1/refunds", content=body, headers={**key, **FORM, "Idempotency-Key": "k-1"})
    assert first.status_code == replay.status_code == 200 and first.json() == replay.json()
    assert (
        replay.headers["idempotent-replayed"] == "true"
        and replay.headers["original-request"] == first.headers["request-id"]
    )
    assert charge["amount_refunded"] == 300 and len(sandbox.store.refunds) == 1
    other = http.post(
        "/v1/refunds", data={"charge": charge["id"], "amount": 301}, headers={**key, "Idempotency-Key": "k-1"}
    )
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    # A malformed request is not remembered: the key stays usable once the request is fixed.
    bad = http.post(
        "/v1/refunds", data={"charge": charge["id"], "amount": "x"}, headers={**key, "Idempotency-Key": "k-2"}
    )
    good = http.post(
        "/v1/refunds", data={"charge": charge["id"], "amount": "1"}, headers={**key, "Idempotency-Key": "k-2"}
    )
    assert bad.status_code == 400 and good.status_code == 200 and charge["amount_refunded"] == 301


def test_throttle_and_failures_answer_before_anything_else(http: TestClient) -> None:
    key = _auth(http.post("/_control/api-keys", json={}).json()["key"])
    http.post("/_control/throttle", json={"count": 1, "retry_after": 4})
    limited = http.get("/v1/balance", headers=key)
    assert (
        limited.status_code == 429
        and limited.headers["retry-after"] == "4"
        and limited.json()["error"]["code"] == "rate_limit"
    )
    http.post("/_control/fail", json={"count": 1, "status": 502})
    failed = http.get("/v1/balance", headers=key)
    assert failed.status_code == 502 and failed.json()["error"]["type"] == "api_error"
    assert http.get("/v1/balance", headers=key).status_code == 200
    assert http.post("/_control/fail", json={"status": 404}).status_code == 400
    stats = http.get("/_control/stats").json()
    assert stats["api_requests"] == 3 and ["GET", "/v1/balance"] in stats["requests"]


def test_seeded_account_has_history_and_balance(sandbox: StripeSandbox) -> None:
    store = sandbox.store
    assert len(store.customers) == 6 and len(store.payment_intents) == len(store.charges) == 7
    assert sum(1 for c in store.charges.values() if c["status"] == "failed") == 1
    balance = store.balance()
    assert balance["available"][0]["amount"] > 0 and balance["pending"][0]["amount"] == 12000
    (paid,) = sandbox.billing.invoices.values()
    assert paid["status"] == "paid" and paid["amount_paid"] == 12000 and paid["number"]
    assert StripeSandbox(client_id="a", client_secret="b").store.account == store.account  # stable seed ids
