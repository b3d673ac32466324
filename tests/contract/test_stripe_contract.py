"""The Stripe connector against Stripe's published spec (API version 2023-08-16), served by prism; and the
Stripe sandbox's answers against the same spec.

prism checks each request and answers 422 with an `sl-violations` header when it does not conform (which
stripe-python raises as `APIError` and the connector maps to ProviderRejected); otherwise it answers with
Stripe's fixtures. `Prefer: code=NNN` makes it answer that status instead, which proves the error mapping.

One thing prism cannot check: form bodies with nested parameters. The spec's form `encoding` blocks were
dropped (a prism deepObject bug), so prism reads `line_items[0][price]=…` as a literal key and reports
`line_items` missing. `stripe_payment_links_create` therefore meets that one known violation at prism; its
body is checked here instead by decoding it the way Stripe does (bracket notation) and validating it against
the spec's request schema (`test_every_write_body_validates_against_the_spec`), and its behaviour is
covered by the sandbox tests.
"""

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from connectors import CONNECTORS
from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from connectors.stripe import client as stripe_client
from connectors.stripe.client import StripeClient
from hub.demo import approve_consent
from hub.sandbox._stripe_params import decode
from hub.sandbox.stripe import StripeSandbox
from tests.contract.prism import ROOT, serve_prism
from tests.contract.spec import SpecSchemas

SPEC_PATH = ROOT.parent / "shared/specs/stripe-2023-09-12-subset.json"
TOOLS = {t.name: t for t in CONNECTORS["stripe"].tools}
TOKEN = "sk_test_contract0123456789"
# What prism cannot parse (see the module docstring); anything else it reports fails the test.
PRISM_CANNOT_PARSE_NESTED_FORMS = {
    "stripe_payment_links_create": "POST /v1/payment_links: Request body must have required property 'line_items'"
}

# Realistic arguments for every tool; a new tool fails `test_tool_request_conforms` until it has a case here.
CASES: dict[str, list[dict[str, Any]]] = {
    "stripe_customers_search": [
        {"query": "email:'ada@analytical-engines.example.com'"},
        {"query": "name~'lovelace' AND metadata['plan']:'pro'", "limit": 100, "after": "page_b2Zmc2V0OjEw"},
    ],
    "stripe_customers_get": [{"customer_id": "cus_NffrFeUfNV2Hib"}],
    "stripe_customers_create": [
        {"email": "grace@navy.example.com"},
        {
            "email": "ada@analytical-engines.example.com",
            "name": "Ada Lovelace",
            "phone": "+442079460958",
            "description": "Signed up at the London meetup",
            "idempotency_key": "create-ada-7f3c9e1a",
        },
    ],
    "stripe_payment_intents_list": [
        {},
        {"customer": "cus_NffrFeUfNV2Hib", "limit": 100, "after": "pi_3MtwBwLkdIwHu7ix"},
    ],
    "stripe_payment_intents_get": [{"payment_intent_id": "pi_3MtwBwLkdIwHu7ix28a3tqPa"}],
    "stripe_charges_list": [
        {},
        {"customer": "cus_NffrFeUfNV2Hib", "payment_intent": "pi_3MtwBwLkdIwHu7ix", "limit": 5, "after": "ch_3Mml"},
    ],
    "stripe_charges_get": [{"charge_id": "ch_3MmlLrLkdIwHu7ix0snN0B15"}],
    "stripe_balance_get": [{}],
    "stripe_refunds_create": [
        {"payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa"},
        {
            "charge": "ch_3MmlLrLkdIwHu7ix0snN0B15",
            "amount": 2500,
            "reason": "requested_by_customer",
            "idempotency_key": "refund-order-1001",
        },
    ],
    "stripe_invoices_list": [{}, {"customer": "cus_NffrFeUfNV2Hib", "status": "open", "limit": 20, "after": "in_1MtH"}],
    "stripe_invoices_create": [
        {"customer": "cus_NffrFeUfNV2Hib", "items": [{"description": "Consulting, March", "unit_amount": 15000}]},
        {
            "customer": "cus_NffrFeUfNV2Hib",
            "items": [
                {"description": "Workshop seats", "unit_amount": 2500, "quantity": 4},
                {"description": "Early-bird discount", "unit_amount": -1000},
            ],
            "collection_method": "charge_automatically",
            "currency": "eur",
            "description": "Thanks for your business",
            "idempotency_key": "invoice-order-1001",
        },
    ],
    "stripe_invoices_finalize": [{"invoice_id": "in_1MtHbELkdIwHu7ixl4OzzPMv"}],
    "stripe_invoices_send": [{"invoice_id": "in_1MtHbELkdIwHu7ixl4OzzPMv"}],
    "stripe_payment_links_create": [
        {"price": "price_1MoBy5LkdIwHu7ixZhnattbh"},
        {
            "line_items": [
                {"price": "price_1MoBy5LkdIwHu7ixZhnattbh", "quantity": 2},
                {"price": "price_1MoC3TLkdIwHu7ixMZ"},
            ],
            "idempotency_key": "link-spring-sale-01",
        },
    ],
}
ERRORS: dict[int, type[ConnectorError]] = {
    400: ProviderRejected,
    401: ProviderAuthExpired,
    403: ProviderForbidden,
    404: ProviderNotFound,
    429: ProviderRateLimited,
    500: ProviderUnavailable,
}


# --- the spec, as JSON Schema ---------------------------------------------------------------------------


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 → JSON Schema draft 4: `nullable: true` becomes a null alternative."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


SPEC: dict[str, Any] = _json_schema(json.loads(SPEC_PATH.read_text()))
SPEC_URI = "urn:stripe-2023-08-16"
SCHEMAS = SpecSchemas(SPEC, SPEC_URI)


def _operation(method: str, path: str) -> tuple[str, str]:
    """The spec's path template for a concrete request path, e.g. /v1/customers/cus_1 → /v1/customers/{customer}."""
    parts = path.split("/")
    for template in sorted(SPEC["paths"], key=lambda t: t.count("{")):  # literal segments win: /search
        pattern = template.split("/")
        fits = len(pattern) == len(parts) and all(
            p == q or (p.startswith("{") and q) for p, q in zip(pattern, parts, strict=True)
        )
        if fits and method.lower() in SPEC["paths"][template]:
            return template, method.lower()
    raise AssertionError(f"{method} {path} is not in the spec")


def _typed(value: Any) -> Any:
    """Form values as the JSON types Stripe reads them as, so a schema can check them."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _form_problems(method: str, path: str, body: str) -> list[str]:
    template, verb = _operation(method, path)
    schema = ("paths", template, verb, "requestBody", "content", "application/x-www-form-urlencoded", "schema")
    form = _typed(decode(parse_qsl(body, keep_blank_values=True)))
    return [f"{method} {path}: {p}" for p in SCHEMAS.problems(form, *schema)]


def _answer_problems(method: str, path: str, status: int, body: Any) -> list[str]:
    template, verb = _operation(method, path)
    responses = SPEC["paths"][template][verb]["responses"]
    key = str(status) if str(status) in responses else "default"
    schema = ("paths", template, verb, "responses", key, "content", "application/json", "schema")
    return [f"{method} {path} {status}: {p}" for p in SCHEMAS.problems(body, *schema)]


# --- prism ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_prism({"prism": SPEC_PATH}, tmp_path_factory.mktemp("prism")) as urls:
        yield urls["prism"]


class _Recorder:
    """The connector's real client, recording each request it sends and what prism said of it."""

    def __init__(self, base: str, prefer: int | None = None) -> None:
        self.client = StripeClient(access_token=TOKEN, api_base=base, timeout=10)
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, str]] = []
        send: Callable[..., Any] = self.client.http.request

        def request(method: str, url: str, headers: Any, post_data: Any = None) -> Any:
            if prefer is not None:
                headers = {**headers, "Prefer": f"code={prefer}"}
            path = urlsplit(url).path
            self.requests.append((method.upper(), path, post_data or ""))
            content, status, answer_headers = send(method, url, headers, post_data)
            if found := answer_headers.get("sl-violations"):
                self.violations += [f"{method.upper()} {path}: {v['message']}" for v in json.loads(found)]
            return content, status, answer_headers

        self.client.http.request = request  # type: ignore[method-assign]

    def __enter__(self) -> "_Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """stripe-python's retries, without their sleeps."""
    monkeypatch.setattr(stripe_client._HttpClient, "_sleep_time_seconds", lambda self, n: 0.0)


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_tool_request_conforms(prism: str, name: str) -> None:
    tool = TOOLS[name]
    assert CASES.get(name), f"add realistic arguments for {name} to CASES"
    for arguments in CASES[name]:
        with _Recorder(prism) as recorder:
            try:
                result = await tool.invoke(recorder.client, tool.input_model.model_validate(arguments))
            except ProviderRejected:
                known = PRISM_CANNOT_PARSE_NESTED_FORMS.get(name)
                if recorder.violations == [known]:
                    continue  # the body is checked by test_every_write_body_validates_against_the_spec
                pytest.fail(
                    f"{name}({arguments}) does not conform to Stripe's spec:\n" + "\n".join(recorder.violations)
                )
        assert isinstance(result, tool.output_model)
        assert not recorder.violations, "\n".join(recorder.violations)
        assert all(r[1].startswith("/v1/") for r in recorder.requests)


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_every_write_body_validates_against_the_spec(prism: str, name: str) -> None:
    """Every form body, decoded as Stripe decodes bracket notation, against the spec's request schema."""
    tool = TOOLS[name]
    for arguments in CASES[name]:
        # prism's verdict is test_tool_request_conforms's business; this test reads what was sent.
        with _Recorder(prism) as recorder, contextlib.suppress(ProviderRejected):
            await tool.invoke(recorder.client, tool.input_model.model_validate(arguments))
        problems = [
            p
            for method, path, body in recorder.requests
            if method == "POST"
            for p in _form_problems(method, path, body)
        ]
        assert not problems, "\n".join(problems)
        for method, _path, body in recorder.requests:
            if method == "POST":
                assert "idempotency" not in body.lower()  # the key travels as a header, never a parameter


# prism refuses a payment link's body (422) before it looks at `Prefer`; the sandbox tests map its errors.
@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("name", sorted(set(TOOLS) - set(PRISM_CANNOT_PARSE_NESTED_FORMS)))
async def test_provider_error_maps_to_connector_error(prism: str, no_backoff: None, name: str, status: int) -> None:
    tool = TOOLS[name]
    with _Recorder(prism, prefer=status) as recorder, pytest.raises(ERRORS[status]) as caught:
        await tool.invoke(recorder.client, tool.input_model.model_validate(CASES[name][-1]))
    assert not recorder.violations, "\n".join(recorder.violations)
    assert TOKEN not in caught.value.message and "sk_test" not in caught.value.message
    first = recorder.requests[0][0]
    # stripe-python retries 5xx (any method, every POST carrying its idempotency key) and, here, a 429 on a
    # POST that names no long wait; a 429 on a GET is left to the hub, which retries reads.
    retried = status == 500 or (status == 429 and first == "POST")
    assert len(recorder.requests) == (3 if retried else 1)
    if retried and first == "POST":
        keys = {r[2] for r in recorder.requests}
        assert len(keys) == 1  # the same body each time
    if status == 429:
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after is None


async def test_prism_refuses_a_request_that_breaks_the_spec(prism: str) -> None:
    # The checks above are only as good as prism's refusal: `reason` is an enum, `amount` an integer.
    with _Recorder(prism) as recorder, pytest.raises(ProviderRejected):
        await recorder.client.call(
            recorder.client.v1.refunds.create, params={"charge": "ch_1", "amount": "ten", "reason": "because"}
        )
    assert any("amount must be integer" in v for v in recorder.violations), recorder.violations
    assert any("reason must be equal to one of the allowed values" in v for v in recorder.violations)


def test_the_form_check_catches_a_malformed_nested_body() -> None:
    bad = urlencode({"line_items[0][price]": "price_1", "line_items[0][quantity]": "two"})
    assert any("quantity" in p for p in _form_problems("POST", "/v1/payment_links", bad))
    assert _form_problems("POST", "/v1/payment_links", "line_items[0][price]=price_1&line_items[0][quantity]=2") == []


# --- the sandbox answers in the spec's shapes -----------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_http() -> Iterator[tuple[TestClient, dict[str, str]]]:
    sandbox = StripeSandbox(client_id="conformance", client_secret="sk_test_platformconformance")
    with TestClient(sandbox.app, follow_redirects=False) as http:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": "conformance",
                "scope": "read_write",
                "redirect_uri": "http://127.0.0.1:9/cb",
            }
        )
        callback = approve_consent(http, f"http://testserver/oauth/authorize?{query}")  # type: ignore[arg-type]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        token = http.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "client_secret": "sk_test_platformconformance"},
        ).json()["access_token"]
        yield http, {"Authorization": f"Bearer {token}"}


def _call(http: TestClient, auth: dict[str, str], method: str, path: str, **params: Any) -> tuple[int, Any, list[str]]:
    encoded = urlencode(params)
    if method == "GET":
        answer = http.get(f"{path}?{encoded}" if params else path, headers=auth)
    else:
        answer = http.post(path, content=encoded, headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    body = answer.json()
    return answer.status_code, body, _answer_problems(method, path, answer.status_code, body)


def test_sandbox_answers_conform_to_the_spec(sandbox_http: tuple[TestClient, dict[str, str]]) -> None:
    http, auth = sandbox_http
    problems: list[str] = []

    def call(method: str, path: str, expect: int = 200, **params: Any) -> Any:
        status, body, found = _call(http, auth, method, path, **params)
        assert status == expect, (method, path, status, body)
        problems.extend(found)
        return body

    customers = call("GET", "/v1/customers/search", query="metadata['plan']:'pro'", limit=1)
    customer = customers["data"][0]["id"]
    call("GET", f"/v1/customers/{customer}")
    call("POST", "/v1/customers", email="new@example.com", name="New Customer", **{"metadata[source]": "contract"})
    intents = call("GET", "/v1/payment_intents", limit=100)
    intent = next(p for p in intents["data"] if p["status"] == "succeeded")
    call("GET", f"/v1/payment_intents/{intent['id']}")
    declined = next(p for p in intents["data"] if p["last_payment_error"])
    call("GET", f"/v1/payment_intents/{declined['id']}")
    charges = call("GET", "/v1/charges", customer=customer)
    call("GET", f"/v1/charges/{charges['data'][0]['id']}")
    call("POST", "/v1/refunds", payment_intent=intent["id"], amount=100, reason="duplicate")
    call("GET", "/v1/balance")
    prices = call("GET", "/v1/prices")
    call("POST", "/v1/payment_links", **{"line_items[0][price]": prices["data"][0]["id"], "line_items[0][quantity]": 1})
    draft = call("POST", "/v1/invoices", customer=customer, collection_method="send_invoice", days_until_due=30)
    call(
        "POST",
        "/v1/invoiceitems",
        customer=customer,
        invoice=draft["id"],
        unit_amount=1500,
        quantity=2,
        description="x",
    )
    call("GET", f"/v1/invoices/{draft['id']}")
    call("POST", f"/v1/invoices/{draft['id']}/finalize")
    call("POST", f"/v1/invoices/{draft['id']}/send")
    call("GET", "/v1/invoices", customer=customer, status="open")
    # Errors answer in the spec's `error` shape too.
    call("GET", "/v1/customers/cus_nosuchcustomer", expect=404)
    call("POST", "/v1/refunds", expect=400, charge=charges["data"][0]["id"], amount="ten")
    call("POST", f"/v1/invoices/{draft['id']}/finalize", expect=400)
    assert not problems, "\n".join(problems)


def test_sandbox_objects_carry_every_field_the_spec_requires() -> None:
    """The spec lists every field as required (null when unset): a missing one is a shape bug."""
    sandbox = StripeSandbox(client_id="c", client_secret="s")
    store = sandbox.store
    samples = {
        "customer": next(iter(store.customers.values())),
        "payment_intent": next(iter(store.payment_intents.values())),
        "charge": next(iter(store.charges.values())),
        "price": next(iter(store.prices.values())),
        "invoice": next(iter(sandbox.billing.invoices.values())),
        "invoiceitem": next(iter(sandbox.billing.items.values())),
        "balance": store.balance(),
    }
    problems = [
        f"{name}: {p}"
        for name, obj in samples.items()
        for p in SCHEMAS.problems(copy.deepcopy(obj), "components", "schemas", name)
    ]
    assert not problems, "\n".join(problems)
