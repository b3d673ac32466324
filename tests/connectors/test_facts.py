"""Hub look-ups: each tool's facts resolver against its sandbox on loopback, through the real SDK client. The
facts come back exactly (a file's folders up to the root, a reply's recipients, a charge's customer and what
is left to refund), only what `FactsNeeded` asks for is fetched, and the policy decides on them."""

import base64
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from connectors import TOOLS
from connectors.base import ProviderClient
from connectors.gmail.client import GmailClient
from connectors.gmail.tools import MessagePage
from connectors.google_drive.ancestors import MAX_DEPTH
from connectors.google_drive.client import DriveClient
from connectors.google_drive.tools import FileDetails
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools import Deal, DealPage
from connectors.stripe.client import StripeClient
from connectors.stripe.tools.invoices import Invoice
from connectors.stripe.tools.payments import Charge, ChargePage
from hub.sandbox._google_drive import ROOT_ID
from scopes import CallFacts, Decision, FactsNeeded, GrantView, decide, facts_needed
from tests.connectors.google_sandbox import DRIVE, GMAIL_COMPOSE, GMAIL_READONLY, access_token, google_sandbox
from tests.connectors.hubspot_sandbox import hubspot_client
from tests.harness import Sandbox, run_sandbox

PROJECTS = "1PrjXq0sandboxFolderProjects0001"
ARCHIVE = "1ArcXq0sandboxFolderArchive00002"
DOC = "1DocXq0sandboxLaunchPlanDocument3"
NOTES = "1TxtXq0sandboxNotesTextFile00006"
MISSING_FILE = "1NoSuchFileXq0sandbox0000000000"
ME = "ada.lovelace@example.com"
RENEWALS, RENEWAL_DUE = "1203581", "1203582"  # the sandbox account's second deal pipeline and its first stage
NOTHING = FactsNeeded()
FOLDER_TOOLS = sorted(n for n, t in TOOLS.items() if "folders" in (t.policy.resources or {}).values())
# Every other tool with a facts resolver: each is resolved against its sandbox below.
OTHER_RESOLVERS = {
    "gmail_messages_reply",
    "hubspot_deals_get",
    "hubspot_deals_update",
    "hubspot_deals_create",
    "hubspot_contacts_create",
    "hubspot_companies_create",
    "stripe_refunds_create",
    "stripe_charges_get",
    "stripe_payment_intents_get",
    "stripe_invoices_create",
    "stripe_invoices_finalize",
    "stripe_invoices_send",
    "stripe_customers_create",
}


def _api_requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["api_requests"])


async def _resolve(client: ProviderClient, name: str, needed: FactsNeeded, /, **arguments: Any) -> CallFacts:
    tool = TOOLS[name]
    return await tool.resolve_facts(client, tool.input_model.model_validate(arguments), needed)


async def _run(client: ProviderClient, name: str, /, **arguments: Any) -> BaseModel:
    tool = TOOLS[name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


async def _decide(client: ProviderClient, name: str, constraints: dict[str, Any], /, **arguments: Any) -> Decision:
    """The hub's way: what the grants need looked up, the look-up, then the decision on it."""
    tool = TOOLS[name]
    grants = [GrantView("acct", tool.provider, scope, constraints) for scope in tool.scopes]
    validated = tool.input_model.model_validate(arguments)
    plain = validated.model_dump()
    needed = facts_needed(tool.policy, grants, "acct", plain, tool.scopes)
    facts = await tool.resolve_facts(client, validated, needed)
    return decide(
        tool=tool.name,
        provider=tool.provider,
        needed=tool.scopes,
        grants=grants,
        connection="acct",
        policy=tool.policy,
        arguments=plain,
        facts=facts,
    )


def _refused(decision: Decision, constraint: str) -> None:
    assert decision.reason == "constraint_violated", decision
    assert any(r.constraint == constraint and r.effect == "deny" for r in decision.rules)


# -- Google Drive: the folders a file lies in --------------------------------------------------------------


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with google_sandbox(tmp_path_factory.mktemp("google")) as running:
        yield running


@pytest.fixture
async def drive(google: Sandbox) -> AsyncIterator[DriveClient]:
    built = DriveClient(access_token=access_token(google, DRIVE), api_base=google.url, timeout=10)
    yield built
    built.close()


def _folders(*ids: str) -> FactsNeeded:
    return FactsNeeded(ancestors={"folders": list(ids)})


async def test_a_file_two_folders_deep_lies_in_both_and_the_root(drive: DriveClient) -> None:
    facts = await _resolve(drive, "gdrive_files_read", _folders(DOC), file_id=DOC)
    assert facts == CallFacts(ancestors={DOC: [PROJECTS, ROOT_ID]})


async def test_a_file_three_folders_deep_lists_them_nearest_first(google: Sandbox, drive: DriveClient) -> None:
    made = await _run(drive, "gdrive_files_upload", name="deep.txt", content="x", folder_id=ARCHIVE)
    assert isinstance(made, FileDetails)
    before = _api_requests(google)
    facts = await _resolve(drive, "gdrive_files_get", _folders(made.id), file_id=made.id)
    assert facts.ancestors == {made.id: [ARCHIVE, PROJECTS, ROOT_ID]}
    assert _api_requests(google) - before == 4  # the file, then each folder above it: one request each


async def test_each_id_is_looked_up_once_per_call(google: Sandbox, drive: DriveClient) -> None:
    before = _api_requests(google)
    facts = await _resolve(drive, "gdrive_files_move", _folders(NOTES, ARCHIVE), file_id=NOTES, to_folder_id=ARCHIVE)
    assert facts.ancestors == {NOTES: [ROOT_ID], ARCHIVE: [PROJECTS, ROOT_ID]}
    assert _api_requests(google) - before == 4  # NOTES, the root, ARCHIVE, PROJECTS: the root not twice


async def test_the_root_alias_counts_the_folder_it_names(drive: DriveClient) -> None:
    facts = await _resolve(drive, "gdrive_files_list", _folders("root"), folder_id="root")
    assert facts.ancestors == {"root": [ROOT_ID]}


@pytest.mark.parametrize("name", FOLDER_TOOLS)
async def test_every_tool_with_a_folder_argument_resolves_its_folders(drive: DriveClient, name: str) -> None:
    tool = TOOLS[name]
    arguments = {
        "file_id": DOC,
        "folder_id": ARCHIVE,
        "parent_id": ARCHIVE,
        "to_folder_id": ARCHIVE,
        "name": "x.txt",
        "content": "x",
        "email": "grace@navy.example.com",
        "role": "reader",
    }
    given = {k: v for k, v in arguments.items() if k in tool.input_model.model_fields}
    values = [given[path] for path, allow_list in (tool.policy.resources or {}).items() if allow_list == "folders"]
    facts = await _resolve(drive, name, _folders(*values), **given)
    expected = {DOC: [PROJECTS, ROOT_ID], ARCHIVE: [PROJECTS, ROOT_ID]}
    assert facts.ancestors == {v: expected[v] for v in values}


async def test_a_missing_file_has_no_folders_and_is_refused(drive: DriveClient) -> None:
    facts = await _resolve(drive, "gdrive_files_get", _folders(MISSING_FILE), file_id=MISSING_FILE)
    assert facts.ancestors == {MISSING_FILE: []}
    _refused(await _decide(drive, "gdrive_files_get", {"folders": [PROJECTS]}, file_id=MISSING_FILE), "folders")


async def test_the_walk_stops_at_the_depth_cap(drive: DriveClient) -> None:
    parent, chain = ARCHIVE, []
    for depth in range(MAX_DEPTH + 2):
        made = await _run(drive, "gdrive_folders_create", name=f"level {depth}", parent_id=parent)
        assert isinstance(made, FileDetails)
        parent = made.id
        chain.append(parent)
    facts = await _resolve(drive, "gdrive_files_list", _folders(parent), folder_id=parent)
    expected = [*reversed(chain[:-1]), ARCHIVE, PROJECTS, ROOT_ID][:MAX_DEPTH]
    assert facts.ancestors == {parent: expected}


async def test_the_policy_admits_what_lies_inside_an_allowed_folder(drive: DriveClient) -> None:
    inside = await _decide(drive, "gdrive_files_read", {"folders": [PROJECTS]}, file_id=DOC)
    assert inside.allowed, inside
    _refused(await _decide(drive, "gdrive_files_read", {"folders": [PROJECTS]}, file_id=NOTES), "folders")
    assert (await _decide(drive, "gdrive_files_list", {"folders": [PROJECTS]}, folder_id=ARCHIVE)).allowed
    # A move needs both ends inside: the file where it is (the root) is not.
    moved = await _decide(drive, "gdrive_files_move", {"folders": [PROJECTS]}, file_id=NOTES, to_folder_id=ARCHIVE)
    _refused(moved, "folders")


async def test_drive_fetches_nothing_when_nothing_is_needed(google: Sandbox, drive: DriveClient) -> None:
    before = _api_requests(google)
    assert await _resolve(drive, "gdrive_files_read", NOTHING, file_id=DOC) == CallFacts()
    tool = TOOLS["gdrive_files_move"]
    assert tool.facts is not None
    arguments = tool.input_model.model_validate({"file_id": NOTES, "to_folder_id": ARCHIVE})
    assert await tool.facts(drive, arguments, FactsNeeded(amount=True)) == CallFacts()  # the resolver itself
    assert _api_requests(google) == before


# -- Gmail: whom a reply goes to ---------------------------------------------------------------------------


@pytest.fixture
async def gmail(google: Sandbox) -> AsyncIterator[GmailClient]:
    scopes = f"{GMAIL_READONLY} {GMAIL_COMPOSE}"
    built = GmailClient(access_token=access_token(google, scopes), api_base=google.url, timeout=10)
    yield built
    built.close()


RECIPIENTS = FactsNeeded(resources=("recipients_domain",))


async def _send(gmail: GmailClient, headers: dict[str, str]) -> str:
    """Send a message with exactly these headers (Gmail sets From) and return its id."""
    message = EmailMessage()
    for name, value in headers.items():
        message[name] = value
    message.set_content("Hello.\n")
    raw = base64.urlsafe_b64encode(message.as_bytes()).decode("ascii")
    sent = await gmail.execute(lambda: gmail.messages.send(userId="me", body={"raw": raw}), needs=GMAIL_COMPOSE)
    return str(sent["id"])


async def test_a_reply_goes_to_the_sender(gmail: GmailClient) -> None:
    page = await _run(gmail, "gmail_messages_search", query="from:grace@navy.example.com")
    assert isinstance(page, MessagePage) and page.messages
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id=page.messages[0].id, body="Yes.")
    assert facts == CallFacts(resources={"recipients_domain": ["grace@navy.example.com"]})


async def test_a_reply_to_the_users_own_mail_goes_to_each_of_its_recipients(gmail: GmailClient) -> None:
    sent = await _send(
        gmail,
        {
            "To": '"Babbage, Jr., Charles" <charles@engines.example.com>, "Hopper, Grace" <grace@navy.example.com>',
            "Cc": "Vendor Billing <billing@vendor.example.com>",
            "Subject": "Drawings",
        },
    )
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id=sent, body="And another thing.")
    assert facts.resources == {"recipients_domain": ["charles@engines.example.com", "grace@navy.example.com"]}
    refused = await _decide(
        gmail, "gmail_messages_reply", {"recipients_domain": ["navy.example.com"]}, message_id=sent, body="Hi."
    )
    _refused(refused, "recipients_domain")


async def test_a_reply_goes_to_reply_to_before_from(gmail: GmailClient) -> None:
    # Sent to the user themself, so it is also in the inbox: answered like any received message.
    received = await _send(
        gmail,
        {
            "To": ME,
            "Reply-To": '"Lovelace, Ada (Countess)" <ada@lovelace.example.org>, Notes <notes@example.com>',
            "Subject": "Reminder",
        },
    )
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id=received, body="Noted.")
    assert facts.resources == {"recipients_domain": ["ada@lovelace.example.org", "notes@example.com"]}
    allowed = await _decide(
        gmail,
        "gmail_messages_reply",
        {"recipients_domain": ["example.com", "*.example.org"]},
        message_id=received,
        body="Noted.",
    )
    assert not any(r.effect == "deny" for r in allowed.rules), allowed


async def test_each_member_of_a_group_is_a_recipient(gmail: GmailClient) -> None:
    group = await _send(gmail, {"To": ME, "Reply-To": "Team: a@example.com, b@example.org;", "Subject": "Group"})
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id=group, body="Hi.")
    assert facts.resources == {"recipients_domain": ["a@example.com", "b@example.org"]}


async def test_an_address_that_cannot_be_read_is_kept_empty_and_refused(gmail: GmailClient) -> None:
    odd = await _send(gmail, {"To": ME, "Reply-To": "a@evil.example@good.example", "Subject": "Odd"})
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id=odd, body="Hi.")
    assert facts.resources == {"recipients_domain": [""]}
    refused = await _decide(
        gmail, "gmail_messages_reply", {"recipients_domain": ["good.example"]}, message_id=odd, body="Hi."
    )
    _refused(refused, "recipients_domain")


async def test_a_missing_message_leaves_the_recipients_unknown(gmail: GmailClient) -> None:
    facts = await _resolve(gmail, "gmail_messages_reply", RECIPIENTS, message_id="ffffffff", body="Hi.")
    assert facts == CallFacts()


async def test_gmail_fetches_nothing_when_nothing_is_needed(google: Sandbox, gmail: GmailClient) -> None:
    page = await _run(gmail, "gmail_messages_search", query="from:grace@navy.example.com")
    assert isinstance(page, MessagePage)
    before = _api_requests(google)
    arguments = {"message_id": page.messages[0].id, "body": "Yes."}
    assert await _resolve(gmail, "gmail_messages_reply", NOTHING, **arguments) == CallFacts()
    tool = TOOLS["gmail_messages_reply"]
    assert tool.facts is not None
    validated = tool.input_model.model_validate(arguments)
    assert await tool.facts(gmail, validated, FactsNeeded(amount=True)) == CallFacts()
    assert _api_requests(google) == before


# -- HubSpot: a deal's pipeline, records a create would add ------------------------------------------------


@pytest.fixture(scope="module")
def hubspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path_factory.mktemp("hubspot")) as running:
        yield running


@pytest.fixture
async def crm(hubspot: Sandbox) -> AsyncIterator[HubSpotClient]:
    built = hubspot_client(hubspot)
    yield built
    built.close()


PIPELINES = FactsNeeded(resources=("pipelines",))


async def _renewal(crm: HubSpotClient) -> Deal:
    deal = await _run(crm, "hubspot_deals_create", dealname="Acme renewal", dealstage=RENEWAL_DUE, pipeline=RENEWALS)
    assert isinstance(deal, Deal) and deal.pipeline == RENEWALS
    return deal


async def test_a_deal_is_in_the_pipeline_hubspot_says(hubspot: Sandbox, crm: HubSpotClient) -> None:
    page = await _run(crm, "hubspot_deals_search", pipeline="default", limit=1)
    assert isinstance(page, DealPage) and page.deals
    facts = await _resolve(crm, "hubspot_deals_get", PIPELINES, deal_id=page.deals[0].id)
    assert facts == CallFacts(resources={"pipelines": ["default"]})
    renewal = await _renewal(crm)
    before = _api_requests(hubspot)
    facts = await _resolve(crm, "hubspot_deals_get", PIPELINES, deal_id=renewal.id)
    assert facts.resources == {"pipelines": [RENEWALS]}
    assert _api_requests(hubspot) - before == 1


async def test_an_update_resolves_the_pipeline_the_deal_is_in_not_the_one_it_moves_to(crm: HubSpotClient) -> None:
    renewal = await _renewal(crm)
    arguments = {"deal_id": renewal.id, "pipeline": "default", "dealstage": "appointmentscheduled"}
    facts = await _resolve(crm, "hubspot_deals_update", PIPELINES, **arguments)
    assert facts.resources == {"pipelines": [RENEWALS]}
    # Moving a deal out of a pipeline the grant does not allow is refused, though it moves to an allowed one.
    _refused(await _decide(crm, "hubspot_deals_update", {"pipelines": ["default"]}, **arguments), "pipelines")
    assert (await _decide(crm, "hubspot_deals_update", {"pipelines": ["default", RENEWALS]}, **arguments)).allowed


async def test_a_missing_deal_leaves_its_pipeline_unknown(crm: HubSpotClient) -> None:
    assert await _resolve(crm, "hubspot_deals_get", PIPELINES, deal_id="99999999999") == CallFacts()


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("hubspot_contacts_create", {"email": "new@example.com"}),
        ("hubspot_companies_create", {"name": "New Co"}),
        ("hubspot_deals_create", {"dealname": "New deal", "dealstage": "appointmentscheduled", "company_id": "1"}),
    ],
)
async def test_a_create_leaves_the_new_record_unknown_without_asking(
    hubspot: Sandbox, crm: HubSpotClient, name: str, arguments: dict[str, Any]
) -> None:
    before = _api_requests(hubspot)
    needed = FactsNeeded(resources=("object_ids",))
    assert await _resolve(crm, name, needed, **arguments) == CallFacts()
    assert _api_requests(hubspot) == before
    _refused(await _decide(crm, name, {"object_ids": ["1"]}, **arguments), "object_ids")


async def test_hubspot_fetches_nothing_when_nothing_is_needed(hubspot: Sandbox, crm: HubSpotClient) -> None:
    renewal = await _renewal(crm)
    before = _api_requests(hubspot)
    for name in ("hubspot_deals_get", "hubspot_deals_update"):
        arguments = {"deal_id": renewal.id} | ({"dealname": "Renamed"} if name == "hubspot_deals_update" else {})
        assert await _resolve(crm, name, NOTHING, **arguments) == CallFacts()
        tool = TOOLS[name]
        assert tool.facts is not None
        validated = tool.input_model.model_validate(arguments)
        assert await tool.facts(crm, validated, FactsNeeded(amount=True)) == CallFacts()
    assert _api_requests(hubspot) == before


# -- Stripe: customers, refundable amounts, invoices -------------------------------------------------------


@pytest.fixture(scope="module")
def stripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("stripe", tmp_path_factory.mktemp("stripe")) as running:
        yield running


@pytest.fixture
async def payments(stripe: Sandbox) -> AsyncIterator[StripeClient]:
    built = StripeClient(access_token=_secret_key(stripe), api_base=stripe.url, timeout=10)
    yield built
    built.close()


def _secret_key(stripe: Sandbox) -> str:
    answer = httpx.post(f"{stripe.url}/_control/api-keys", json={})
    answer.raise_for_status()
    key: str = answer.json()["key"]
    return key


CUSTOMERS_AND_AMOUNT = FactsNeeded(resources=("customers",), amount=True)


async def _charges(payments: StripeClient) -> list[Charge]:
    page = await _run(payments, "stripe_charges_list", limit=100)
    assert isinstance(page, ChargePage)
    return page.charges


async def _fresh_charge(payments: StripeClient) -> Charge:
    """A succeeded charge of a customer, nothing refunded from it yet."""
    charges = await _charges(payments)
    return next(c for c in charges if c.status == "succeeded" and c.amount_refunded == 0 and c.customer)


async def test_a_partly_refunded_charge_has_the_rest_left_to_refund(stripe: Sandbox, payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    await _run(payments, "stripe_refunds_create", charge=charge.id, amount=1000)
    before = _api_requests(stripe)
    facts = await _resolve(payments, "stripe_refunds_create", CUSTOMERS_AND_AMOUNT, charge=charge.id)
    assert facts == CallFacts(
        resources={"customers": [str(charge.customer)]}, amount=charge.amount - 1000, currency="usd"
    )
    assert _api_requests(stripe) - before == 1


async def test_a_payment_intent_refunds_its_latest_charge(stripe: Sandbox, payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    intent = str(charge.payment_intent)
    await _run(payments, "stripe_refunds_create", payment_intent=intent, amount=700)
    before = _api_requests(stripe)
    facts = await _resolve(payments, "stripe_refunds_create", CUSTOMERS_AND_AMOUNT, payment_intent=intent)
    assert facts == CallFacts(
        resources={"customers": [str(charge.customer)]}, amount=charge.amount - 700, currency="usd"
    )
    assert _api_requests(stripe) - before == 2  # the intent, then its charge for the amount
    # With the amount given, the intent alone tells the customer and the currency.
    given = await _resolve(payments, "stripe_refunds_create", CUSTOMERS_AND_AMOUNT, payment_intent=intent, amount=100)
    assert given == CallFacts(resources={"customers": [str(charge.customer)]}, currency="usd")
    assert _api_requests(stripe) - before == 3


async def test_the_refund_policy_decides_on_the_looked_up_amount(payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    assert charge.customer
    await _run(payments, "stripe_refunds_create", charge=charge.id, amount=charge.amount - 300)
    limits = {"customers": [charge.customer], "max_amount": 500, "currency": ["usd"]}
    assert (await _decide(payments, "stripe_refunds_create", limits, charge=charge.id)).allowed  # 300 left
    _refused(
        await _decide(payments, "stripe_refunds_create", limits | {"max_amount": 200}, charge=charge.id), "max_amount"
    )
    _refused(
        await _decide(payments, "stripe_refunds_create", limits | {"customers": ["cus_Other"]}, charge=charge.id),
        "customers",
    )


async def test_a_payment_without_a_customer_leaves_customers_unknown(payments: StripeClient) -> None:
    guest = next(c for c in await _charges(payments) if c.customer is None)
    facts = await _resolve(payments, "stripe_refunds_create", CUSTOMERS_AND_AMOUNT, charge=guest.id)
    assert facts == CallFacts(amount=guest.amount - guest.amount_refunded, currency="usd")
    _refused(await _decide(payments, "stripe_refunds_create", {"customers": ["cus_Any"]}, charge=guest.id), "customers")


async def test_a_charge_and_an_intent_tell_their_customer(payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    customers = FactsNeeded(resources=("customers",))
    expected = CallFacts(resources={"customers": [str(charge.customer)]})
    assert await _resolve(payments, "stripe_charges_get", customers, charge_id=charge.id) == expected
    intent = str(charge.payment_intent)
    assert await _resolve(payments, "stripe_payment_intents_get", customers, payment_intent_id=intent) == expected
    assert await _resolve(payments, "stripe_charges_get", customers, charge_id="ch_NoSuchCharge") == CallFacts()


async def _draft(payments: StripeClient, customer: str) -> Invoice:
    items = [
        {"description": "Workshop", "unit_amount": 2500, "quantity": 2},
        {"description": "Pack", "unit_amount": 500},
    ]
    draft = await _run(payments, "stripe_invoices_create", customer=customer, items=items)
    assert isinstance(draft, Invoice) and draft.total == 5500
    return draft


async def test_an_invoice_tells_its_customer_recipient_and_total(stripe: Sandbox, payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    customer = str(charge.customer)
    draft = await _draft(payments, customer)
    found = await _run(payments, "stripe_customers_get", customer_id=customer)
    email = found.model_dump()["email"]
    before = _api_requests(stripe)
    facts = await _resolve(payments, "stripe_invoices_finalize", CUSTOMERS_AND_AMOUNT, invoice_id=draft.id)
    assert facts == CallFacts(resources={"customers": [customer]}, amount=5500, currency="usd")
    await _run(payments, "stripe_invoices_finalize", invoice_id=draft.id)
    everything = FactsNeeded(resources=("customers", "recipients_domain"), amount=True)
    facts = await _resolve(payments, "stripe_invoices_send", everything, invoice_id=draft.id)
    assert facts == CallFacts(
        resources={"customers": [customer], "recipients_domain": [email]}, amount=5500, currency="usd"
    )
    only_recipient = FactsNeeded(resources=("recipients_domain",))
    facts = await _resolve(payments, "stripe_invoices_send", only_recipient, invoice_id=draft.id)
    assert facts == CallFacts(resources={"recipients_domain": [email]})
    assert _api_requests(stripe) - before == 4  # three look-ups, a request each, and the finalize
    domain = email.rsplit("@", 1)[1]
    assert (
        await _decide(payments, "stripe_invoices_send", {"recipients_domain": [domain]}, invoice_id=draft.id)
    ).allowed
    _refused(
        await _decide(payments, "stripe_invoices_send", {"recipients_domain": ["other.example"]}, invoice_id=draft.id),
        "recipients_domain",
    )


async def test_a_new_invoice_takes_the_customers_currency(stripe: Sandbox, payments: StripeClient) -> None:
    customer = str((await _fresh_charge(payments)).customer)
    items = [{"description": "Workshop", "unit_amount": 2500}]
    facts = await _resolve(payments, "stripe_invoices_create", FactsNeeded(amount=True), customer=customer, items=items)
    assert facts == CallFacts(currency="usd")
    before = _api_requests(stripe)
    given = {"customer": customer, "items": items, "currency": "eur"}
    assert await _resolve(payments, "stripe_invoices_create", FactsNeeded(amount=True), **given) == CallFacts()
    assert _api_requests(stripe) == before


async def test_stripe_fetches_nothing_when_nothing_is_needed(stripe: Sandbox, payments: StripeClient) -> None:
    charge = await _fresh_charge(payments)
    draft = await _draft(payments, str(charge.customer))
    cases: dict[str, dict[str, Any]] = {
        "stripe_refunds_create": {"charge": charge.id},
        "stripe_charges_get": {"charge_id": charge.id},
        "stripe_payment_intents_get": {"payment_intent_id": str(charge.payment_intent)},
        "stripe_invoices_finalize": {"invoice_id": draft.id},
        "stripe_invoices_send": {"invoice_id": draft.id},
        "stripe_invoices_create": {"customer": str(charge.customer), "items": [{"description": "x", "unit_amount": 1}]},
        "stripe_customers_create": {"email": "new@example.com"},
    }
    before = _api_requests(stripe)
    for name, arguments in cases.items():
        assert await _resolve(payments, name, NOTHING, **arguments) == CallFacts()
        tool = TOOLS[name]
        assert tool.facts is not None
        validated = tool.input_model.model_validate(arguments)
        assert await tool.facts(payments, validated, FactsNeeded(ancestors={"folders": ["x"]})) == CallFacts()
    # A new customer's id is unknown until it exists: asked for, it stays unknown, and nothing is fetched.
    created = await _resolve(payments, "stripe_customers_create", CUSTOMERS_AND_AMOUNT, email="new@example.com")
    assert created == CallFacts()
    assert _api_requests(stripe) == before


def test_every_tool_with_a_resolver_is_tested_here() -> None:
    assert {name for name, t in TOOLS.items() if t.facts is not None} == {*FOLDER_TOOLS, *OTHER_RESOLVERS}
