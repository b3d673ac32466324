"""Each Stripe tool against the Stripe sandbox on loopback, through the real stripe-python client: shaped
output, paging, refunds that move money once, the invoice life cycle, and every provider failure mapped to
its typed connector error."""

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import requests
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.errors import (
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from connectors.stripe import client as stripe_client
from connectors.stripe.client import StripeClient
from connectors.stripe.tools.customers import Customer, CustomerPage
from connectors.stripe.tools.invoices import Invoice, InvoicePage
from connectors.stripe.tools.payment_links import PaymentLink
from connectors.stripe.tools.payments import Balance, Charge, ChargePage, PaymentIntent, PaymentIntentPage
from connectors.stripe.tools.refunds import Refund
from hub.demo import approve_consent
from tests.harness import Sandbox, free_port, run_sandbox

TOOLS = {t.name: t for t in CONNECTORS["stripe"].tools}
REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("stripe", tmp_path_factory.mktemp("stripe")) as running:
        yield running


def _access_token(sandbox: Sandbox, scope: str = "read_write") -> str:
    """Walk Stripe Connect: consent page, "Connect", code exchange with the platform's secret key."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": sandbox.client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "s",
        }
    )
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, f"{sandbox.url}/oauth/authorize?{query}")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        answer = browser.post(
            f"{sandbox.url}/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "client_secret": sandbox.client_secret},
        )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def _api_key(sandbox: Sandbox, permissions: list[str] | None = None) -> str:
    body = {} if permissions is None else {"permissions": permissions}
    answer = httpx.post(f"{sandbox.url}/_control/api-keys", json=body)
    answer.raise_for_status()
    key: str = answer.json()["key"]
    return key


def _control(sandbox: Sandbox, action: str, **body: Any) -> None:
    httpx.post(f"{sandbox.url}/_control/{action}", json=body).raise_for_status()


def _requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["api_requests"])


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[StripeClient]:
    built = StripeClient(access_token=_access_token(sandbox), api_base=sandbox.url, timeout=10)
    yield built
    built.close()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripe_client._HttpClient, "_sleep_time_seconds", lambda self, n: 0.0)


async def _run(client: StripeClient, tool_name: str, /, **arguments: Any) -> BaseModel:
    tool = TOOLS[tool_name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


async def _price(client: StripeClient) -> str:
    prices = await client.call(client.v1.prices.list)
    return str(prices["data"][0]["id"])


def test_every_stripe_tool_is_exercised_here() -> None:
    exercised = {
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
    assert set(TOOLS) == exercised, f"add a sandbox test for {sorted(set(TOOLS) - exercised)} to this module"


async def test_create_a_customer_then_get_and_search_it(client: StripeClient) -> None:
    tag = uuid.uuid4().hex[:10]
    email = f"grace.{tag}@navy.example.com"
    created = await _run(
        client, "stripe_customers_create", email=email, name=f"Grace Hopper {tag}", phone="+15550199", description="VIP"
    )
    assert isinstance(created, Customer)
    assert created.id.startswith("cus_") and created.created
    assert (created.email, created.phone, created.description, created.balance) == (email, "+15550199", "VIP", 0)

    got = await _run(client, "stripe_customers_get", customer_id=created.id)
    assert got == created

    by_email = await _run(client, "stripe_customers_search", query=f"email:'{email.upper()}'")
    assert isinstance(by_email, CustomerPage)
    assert [c.id for c in by_email.customers] == [created.id] and by_email.next_cursor is None
    by_name = await _run(client, "stripe_customers_search", query=f"name~'{tag}' AND -email:'nobody@example.com'")
    assert isinstance(by_name, CustomerPage) and [c.id for c in by_name.customers] == [created.id]

    with pytest.raises(ProviderRejected, match="at least an email or a name"):
        await _run(client, "stripe_customers_create", phone="+15550100")


async def test_search_pages_through_every_match_once(client: StripeClient) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await _run(client, "stripe_customers_search", query="created>0", limit=2, after=after)
        assert isinstance(page, CustomerPage) and len(page.customers) <= 2
        seen += [c.id for c in page.customers]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert len(seen) == len(set(seen)) >= 6  # six seeded customers, and any created here
    pros = await _run(client, "stripe_customers_search", query="metadata['plan']:'pro'")
    assert isinstance(pros, CustomerPage)
    assert {c.name for c in pros.customers} == {"Ada Lovelace", "Katherine Johnson"}
    assert all(c.metadata == {"plan": "pro"} for c in pros.customers)
    with pytest.raises(ProviderRejected, match="unsupported search field"):
        await _run(client, "stripe_customers_search", query="shoe_size:'42'")


async def test_payment_intents_and_charges_page_newest_first_and_filter(client: StripeClient) -> None:
    intents: list[PaymentIntent] = []
    after: str | None = None
    while True:
        page = await _run(client, "stripe_payment_intents_list", limit=3, after=after)
        assert isinstance(page, PaymentIntentPage)
        intents += page.payment_intents
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert len(intents) >= 7 and len({p.id for p in intents}) == len(intents)
    created = [p.created or "" for p in intents]
    assert created == sorted(created, reverse=True)
    declined = next(p for p in intents if p.status == "requires_payment_method")
    assert declined.last_error == "Your card was declined." and declined.amount_received == 0

    paid = next(p for p in intents if p.status == "succeeded" and p.customer)
    assert await _run(client, "stripe_payment_intents_get", payment_intent_id=paid.id) == paid
    charges = await _run(client, "stripe_charges_list", payment_intent=paid.id)
    assert isinstance(charges, ChargePage)
    (charge,) = charges.charges
    assert (charge.id, charge.amount, charge.currency, charge.status) == (
        paid.latest_charge,
        paid.amount,
        "usd",
        "succeeded",
    )
    assert charge.card is not None and charge.card.brand and len(charge.card.last4 or "") == 4
    assert set(charge.card.model_dump()) == {"brand", "last4"}  # nothing more of the card, ever
    assert await _run(client, "stripe_charges_get", charge_id=charge.id) == charge

    mine = await _run(client, "stripe_charges_list", customer=paid.customer, limit=100)
    assert isinstance(mine, ChargePage) and mine.charges and all(c.customer == paid.customer for c in mine.charges)
    theirs = await _run(client, "stripe_payment_intents_list", customer=paid.customer, limit=100)
    assert isinstance(theirs, PaymentIntentPage) and all(p.customer == paid.customer for p in theirs.payment_intents)


async def _fresh_charge(client: StripeClient) -> Charge:
    """A succeeded charge nothing has been refunded from yet."""
    page = await _run(client, "stripe_charges_list", limit=100)
    assert isinstance(page, ChargePage)
    return next(c for c in page.charges if c.status == "succeeded" and c.amount_refunded == 0)


async def _available(client: StripeClient) -> int:
    balance = await _run(client, "stripe_balance_get")
    assert isinstance(balance, Balance) and balance.livemode is False
    return sum(f.amount for f in balance.available if f.currency == "usd")


async def test_partial_then_full_refund_moves_the_balance_and_marks_the_charge(client: StripeClient) -> None:
    charge = await _fresh_charge(client)
    before = await _available(client)
    assert charge.payment_intent
    part = await _run(
        client,
        "stripe_refunds_create",
        payment_intent=charge.payment_intent,
        amount=1000,
        reason="requested_by_customer",
    )
    assert isinstance(part, Refund)
    assert (part.status, part.amount, part.charge, part.reason) == (
        "succeeded",
        1000,
        charge.id,
        "requested_by_customer",
    )
    assert await _available(client) == before - 1000
    halfway = await _run(client, "stripe_charges_get", charge_id=charge.id)
    assert isinstance(halfway, Charge) and (halfway.amount_refunded, halfway.refunded) == (1000, False)

    with pytest.raises(ProviderRejected, match="greater than unrefunded amount"):
        await _run(client, "stripe_refunds_create", charge=charge.id, amount=charge.amount)
    rest = await _run(client, "stripe_refunds_create", charge=charge.id)  # no amount: whatever is left
    assert isinstance(rest, Refund) and rest.amount == charge.amount - 1000
    done = await _run(client, "stripe_charges_get", charge_id=charge.id)
    assert isinstance(done, Charge) and (done.amount_refunded, done.refunded) == (charge.amount, True)
    assert await _available(client) == before - charge.amount
    with pytest.raises(ProviderRejected, match="already been refunded"):
        await _run(client, "stripe_refunds_create", charge=charge.id, amount=1)


async def test_the_same_idempotency_key_never_refunds_twice(sandbox: Sandbox, client: StripeClient) -> None:
    charge = await _fresh_charge(client)
    before = await _available(client)
    key = f"refund-{uuid.uuid4()}"
    first = await _run(client, "stripe_refunds_create", charge=charge.id, amount=500, idempotency_key=key)
    calls = _requests(sandbox)
    again = await _run(client, "stripe_refunds_create", charge=charge.id, amount=500, idempotency_key=key)
    assert _requests(sandbox) == calls + 1  # it reached Stripe, which replayed the first answer
    assert again == first
    assert await _available(client) == before - 500
    after = await _run(client, "stripe_charges_get", charge_id=charge.id)
    assert isinstance(after, Charge) and after.amount_refunded == 500
    with pytest.raises(ProviderRejected, match="same parameters"):
        await _run(client, "stripe_refunds_create", charge=charge.id, amount=600, idempotency_key=key)
    # Without a key of its own, each call is a new refund (with a fresh key the SDK may safely retry).
    one = await _run(client, "stripe_refunds_create", charge=charge.id, amount=100)
    two = await _run(client, "stripe_refunds_create", charge=charge.id, amount=100)
    assert isinstance(one, Refund) and isinstance(two, Refund) and one.id != two.id


async def test_refunds_need_exactly_one_target_before_any_call(sandbox: Sandbox, client: StripeClient) -> None:
    before = _requests(sandbox)
    with pytest.raises(ProviderRejected, match="exactly one of payment_intent or charge"):
        await _run(client, "stripe_refunds_create", amount=100)
    with pytest.raises(ProviderRejected, match="exactly one"):
        await _run(client, "stripe_refunds_create", payment_intent="pi_1", charge="ch_1")
    assert _requests(sandbox) == before
    page = await _run(client, "stripe_payment_intents_list", limit=100)
    assert isinstance(page, PaymentIntentPage)
    declined = next(p for p in page.payment_intents if p.status != "succeeded")
    with pytest.raises(ProviderRejected, match="does not have a successful charge"):
        await _run(client, "stripe_refunds_create", payment_intent=declined.id)


async def _customer(client: StripeClient) -> str:
    made = await _run(
        client, "stripe_customers_create", email=f"billing.{uuid.uuid4().hex[:8]}@example.com", name="Billing Test"
    )
    assert isinstance(made, Customer)
    return made.id


async def test_invoice_draft_then_finalize_then_send(sandbox: Sandbox, client: StripeClient) -> None:
    customer = await _customer(client)
    items = [
        {"description": "Workshop seats", "unit_amount": 2500, "quantity": 4},
        {"description": "Early-bird discount", "unit_amount": -1000},
    ]
    draft = await _run(client, "stripe_invoices_create", customer=customer, items=items, description="Spring workshop")
    assert isinstance(draft, Invoice)
    assert (draft.status, draft.number, draft.hosted_invoice_url, draft.collection_method) == (
        "draft",
        None,
        None,
        "send_invoice",
    )
    assert (draft.total, draft.amount_due, draft.currency, draft.description) == (9000, 9000, "usd", "Spring workshop")
    assert [(line.description, line.amount, line.quantity) for line in draft.lines] == [
        ("Workshop seats", 10000, 4),
        ("Early-bird discount", -1000, 1),
    ]
    assert draft.due_date and draft.due_date > (draft.created or "")

    with pytest.raises(ProviderRejected, match="draft"):
        await _run(client, "stripe_invoices_send", invoice_id=draft.id)
    final = await _run(client, "stripe_invoices_finalize", invoice_id=draft.id)
    assert isinstance(final, Invoice)
    assert final.status == "open" and final.number and final.hosted_invoice_url and final.amount_remaining == 9000
    with pytest.raises(ProviderRejected, match="already finalized"):
        await _run(client, "stripe_invoices_finalize", invoice_id=draft.id)
    sent = await _run(client, "stripe_invoices_send", invoice_id=draft.id)
    assert isinstance(sent, Invoice) and sent.status == "open"
    outbox = httpx.get(f"{sandbox.url}/_control/outbox").json()["invoices"]
    assert outbox[-1]["invoice"] == draft.id and outbox[-1]["to"].startswith("billing.")

    listed = await _run(client, "stripe_invoices_list", customer=customer)
    assert isinstance(listed, InvoicePage) and [i.id for i in listed.invoices] == [draft.id]
    opened = await _run(client, "stripe_invoices_list", status="open", limit=100)
    assert isinstance(opened, InvoicePage) and draft.id in {i.id for i in opened.invoices}
    paid = await _run(client, "stripe_invoices_list", status="paid")
    assert isinstance(paid, InvoicePage) and paid.invoices and all(i.status == "paid" for i in paid.invoices)

    auto = await _run(
        client, "stripe_invoices_create", customer=customer, items=items[:1], collection_method="charge_automatically"
    )
    assert isinstance(auto, Invoice) and auto.due_date is None
    await _run(client, "stripe_invoices_finalize", invoice_id=auto.id)
    with pytest.raises(ProviderRejected, match="send_invoice"):
        await _run(client, "stripe_invoices_send", invoice_id=auto.id)
    with pytest.raises(ProviderNotFound, match="No such customer"):
        await _run(client, "stripe_invoices_create", customer="cus_doesnotexist", items=items)


async def test_an_invoice_that_failed_part_way_is_finished_by_repeating_the_call(
    client: StripeClient, no_backoff: None
) -> None:
    customer = await _customer(client)
    items = [{"description": "First line", "unit_amount": 1000}, {"description": "Second line", "unit_amount": 2000}]
    send: Callable[..., Any] = client.http.request
    broken = {"left": 3}  # the first POST of line two, and both of the SDK's retries, never arrive

    def flaky(method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        if url.endswith("/v1/invoiceitems") and "Second+line" in (post_data or "") and broken["left"]:
            broken["left"] -= 1
            client.http._handle_request_error(requests.ConnectionError("connection reset"))
        return send(method, url, headers, post_data)

    client.http.request = flaky  # type: ignore[method-assign]
    with pytest.raises(ProviderUnavailable, match=r"line 2 of 2 was not added.*idempotency_key='([^']+)'") as caught:
        await _run(client, "stripe_invoices_create", customer=customer, items=items)
    key = caught.value.message.split("idempotency_key='")[1].split("'")[0]
    done = await _run(client, "stripe_invoices_create", customer=customer, items=items, idempotency_key=key)
    assert isinstance(done, Invoice) and done.total == 3000 and len(done.lines) == 2
    listed = await _run(client, "stripe_invoices_list", customer=customer)
    assert isinstance(listed, InvoicePage) and [i.id for i in listed.invoices] == [done.id]  # one draft, not two


async def test_payment_links_for_a_price_or_several(client: StripeClient) -> None:
    price = await _price(client)
    link = await _run(client, "stripe_payment_links_create", price=price, quantity=2)
    assert isinstance(link, PaymentLink)
    assert link.id.startswith("plink_") and link.url.startswith("https://buy.stripe.com/") and link.active
    several = await _run(
        client, "stripe_payment_links_create", line_items=[{"price": price, "quantity": 1}, {"price": price}]
    )
    assert isinstance(several, PaymentLink) and several.id != link.id and several.currency == "usd"
    with pytest.raises(ProviderNotFound, match="No such price"):
        await _run(client, "stripe_payment_links_create", price="price_doesnotexist")
    with pytest.raises(ProviderRejected, match="exactly one of price or line_items"):
        await _run(client, "stripe_payment_links_create")


# --- failures, each mapped to its connector error ---------------------------------------------------------


async def test_unknown_objects_are_provider_not_found(client: StripeClient) -> None:
    for name, arguments in (
        ("stripe_customers_get", {"customer_id": "cus_doesnotexist"}),
        ("stripe_payment_intents_get", {"payment_intent_id": "pi_doesnotexist"}),
        ("stripe_charges_get", {"charge_id": "ch_doesnotexist"}),
        ("stripe_invoices_finalize", {"invoice_id": "in_doesnotexist"}),
        ("stripe_refunds_create", {"charge": "ch_doesnotexist"}),
    ):
        with pytest.raises(ProviderNotFound, match="No such"):
            await _run(client, name, **arguments)


async def test_expired_or_unknown_keys_are_provider_auth_expired(sandbox: Sandbox) -> None:
    token = _access_token(sandbox)
    for key in (token, "sk_test_notakeyatall0000"):
        stale = StripeClient(access_token=key, api_base=sandbox.url, timeout=10)
        try:
            if key == token:
                _control(sandbox, "expire-tokens")
            with pytest.raises(ProviderAuthExpired) as caught:
                await _run(stale, "stripe_balance_get")
            assert key not in caught.value.message and "sk_test" not in caught.value.message
        finally:
            stale.close()


async def test_a_read_only_connection_is_refused_writes_naming_read_write(sandbox: Sandbox) -> None:
    reader = StripeClient(access_token=_access_token(sandbox, "read_only"), api_base=sandbox.url, timeout=10)
    try:
        assert isinstance(await _run(reader, "stripe_balance_get"), Balance)
        with pytest.raises(ProviderForbidden, match="needs read_write") as caught:
            await _run(reader, "stripe_customers_create", email="eve@example.com")
        assert caught.value.missing_scopes == ("read_write",)
    finally:
        reader.close()


async def test_a_restricted_key_is_refused_what_it_lacks_naming_the_permission(sandbox: Sandbox) -> None:
    key = _api_key(sandbox, ["rak_charge_read", "rak_customer_write"])
    restricted = StripeClient(access_token=key, api_base=sandbox.url, timeout=10)
    try:
        page = await _run(restricted, "stripe_charges_list", limit=1)  # read
        assert isinstance(page, ChargePage)
        assert isinstance(await _run(restricted, "stripe_customers_search", query="name~'Ada'"), CustomerPage)
        with pytest.raises(ProviderForbidden) as caught:
            await _run(restricted, "stripe_refunds_create", charge=page.charges[0].id, amount=1)
        assert caught.value.missing_scopes == ("rak_refund_write",)
        assert key not in caught.value.message and key[-4:] not in caught.value.message
    finally:
        restricted.close()


async def test_a_throttled_read_is_left_to_the_hub_with_retry_after(sandbox: Sandbox, client: StripeClient) -> None:
    _control(sandbox, "throttle", count=1, retry_after=7)
    before = _requests(sandbox)
    with pytest.raises(ProviderRateLimited) as caught:
        await _run(client, "stripe_balance_get")
    assert caught.value.retry_after == 7.0 and _requests(sandbox) == before + 1  # not retried here
    assert isinstance(await _run(client, "stripe_balance_get"), Balance)


async def test_a_throttled_write_is_retried_once_with_its_key(sandbox: Sandbox, client: StripeClient) -> None:
    charge = await _fresh_charge(client)
    _control(sandbox, "throttle", count=1, retry_after=1)
    before, started = _requests(sandbox), time.monotonic()
    refund = await _run(client, "stripe_refunds_create", charge=charge.id, amount=200)
    assert isinstance(refund, Refund) and _requests(sandbox) == before + 2
    assert time.monotonic() - started >= 1.0  # it waited as long as Stripe asked
    after = await _run(client, "stripe_charges_get", charge_id=charge.id)
    assert isinstance(after, Charge) and after.amount_refunded == 200  # once

    _control(sandbox, "throttle", count=1, retry_after=30)  # too long to wait inside one call
    before = _requests(sandbox)
    with pytest.raises(ProviderRateLimited) as caught:
        await _run(client, "stripe_refunds_create", charge=charge.id, amount=200)
    assert caught.value.retry_after == 30.0 and _requests(sandbox) == before + 1


async def test_server_errors_are_retried_then_provider_unavailable(
    sandbox: Sandbox, client: StripeClient, no_backoff: None
) -> None:
    _control(sandbox, "fail", count=1, status=503)
    before = _requests(sandbox)
    assert isinstance(await _run(client, "stripe_balance_get"), Balance)
    assert _requests(sandbox) == before + 2
    _control(sandbox, "fail", count=3, status=500)
    before = _requests(sandbox)
    with pytest.raises(ProviderUnavailable, match="Stripe answered 500"):
        await _run(client, "stripe_balance_get")
    assert _requests(sandbox) == before + 3


async def test_unreachable_stripe_is_provider_unavailable(no_backoff: None) -> None:
    gone = StripeClient(access_token="sk_test_unreachable0000", api_base=f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        with pytest.raises(ProviderUnavailable, match="could not be reached"):
            await _run(gone, "stripe_balance_get")
    finally:
        gone.close()


async def test_a_silent_stripe_is_provider_timeout_without_a_retry() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()  # and never answer
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    silent = StripeClient(
        access_token="sk_test_silent00000000", api_base=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3
    )
    try:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            await _run(silent, "stripe_refunds_create", charge="ch_1", amount=1)
        assert time.monotonic() - started < 1.5 and len(accepted) == 1  # one attempt: no retry after a time-out
    finally:
        silent.close()
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in accepted:
            conn.close()


async def test_a_malformed_request_is_rejected_with_stripes_reason(client: StripeClient) -> None:
    with pytest.raises(ProviderRejected, match="Received unknown parameter: colour"):
        await client.call(client.v1.customers.create, params={"email": "x@example.com", "colour": "blue"})
    with pytest.raises(ProviderRejected, match="Invalid integer: ten"):
        await client.call(client.v1.refunds.create, params={"charge": "ch_1", "amount": "ten"})
