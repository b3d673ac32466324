"""Policy annotations of the HubSpot and Stripe tools, checked through the real `scopes.decide` and result
shaping: allow-lists (`object_ids`, `pipelines`, `customers`, `recipients_domain`) admit the calls inside
them and refuse the others with `constraint_violated` before any provider is called; `max_amount`,
`currency`, approval conditions and `allowed_properties` see the amounts and properties the tools declare;
lists come back filtered; redaction and fingerprints find the labelled data."""

from typing import Any

import pytest
from pydantic import BaseModel

from connectors import TOOLS, Tool
from connectors.hubspot.tools import (
    Company,
    CompanyPage,
    Contact,
    ContactPage,
    Deal,
    DealPage,
    Owner,
    OwnerPage,
    Pipeline,
    PipelineList,
    Stage,
)
from connectors.stripe.tools.customers import Customer, CustomerPage
from connectors.stripe.tools.invoices import Invoice, InvoicePage
from connectors.stripe.tools.payments import Card, Charge, ChargePage, PaymentIntent, PaymentIntentPage
from scopes import CallFacts, Decision, FlowContext, FlowOrigin, GrantView, decide, fingerprint_result, shape_result

KEY = b"k" * 32
PROVIDERS = ("hubspot", "stripe")
OURS = sorted(name for name, t in TOOLS.items() if t.provider in PROVIDERS)

IDS = {"object_ids": ["51", "1001", "1010"]}  # contact 51, company 1001, deal 1010
PIPES = {"pipelines": ["default"]}
CUS = {"customers": ["cus_Allowed1"]}
DOMAINS = {"recipients_domain": ["example.com"]}
IN_PIPELINE = CallFacts(resources={"pipelines": ["default"]})
OUT_PIPELINE = CallFacts(resources={"pipelines": ["partners"]})
OWN_CUSTOMER = CallFacts(resources={"customers": ["cus_Allowed1"]})
OTHER_CUSTOMER = CallFacts(resources={"customers": ["cus_Other1"]})


def _grants(t: Tool, constraints: dict[str, Any]) -> list[GrantView]:
    return [GrantView("acct", t.provider, scope, constraints) for scope in t.scopes]


def _decide(
    name: str, constraints: dict[str, Any], arguments: dict[str, Any], facts: CallFacts | None = None
) -> Decision:
    t = TOOLS[name]
    validated = t.input_model.model_validate(arguments).model_dump()
    return decide(
        tool=t.name,
        provider=t.provider,
        needed=t.scopes,
        grants=_grants(t, constraints),
        connection=None,
        policy=t.policy,
        arguments=validated,
        facts=facts,
    )


def _refused(decision: Decision, constraint: str) -> None:
    assert decision.outcome == "deny" and decision.reason == "constraint_violated", decision
    assert any(r.constraint == constraint and r.effect == "deny" for r in decision.rules), decision.rules


def _shape(name: str, constraints: dict[str, Any], arguments: dict[str, Any], result: BaseModel) -> Any:
    decision = _decide(name, constraints, arguments)
    assert decision.allowed, decision
    data = result.model_dump(mode="json", exclude_none=True)
    return shape_result(data, policy=TOOLS[name].policy, results=decision.results, key=KEY).result


# Every tool declares what it touches, and the decisions on sinks and risk below.


@pytest.mark.parametrize("name", OURS)
def test_every_tool_is_annotated(name: str) -> None:
    assert TOOLS[name].policy.annotated


SINK_AND_RISK = {
    "hubspot_companies_create": (False, "low"),
    "hubspot_companies_get": (False, "low"),
    "hubspot_companies_search": (False, "low"),
    "hubspot_companies_update": (False, "low"),
    "hubspot_contacts_create": (False, "low"),
    "hubspot_contacts_get": (False, "low"),
    "hubspot_contacts_search": (False, "low"),
    "hubspot_contacts_update": (False, "low"),
    "hubspot_deals_create": (False, "low"),
    "hubspot_deals_get": (False, "low"),
    "hubspot_deals_search": (False, "low"),
    "hubspot_deals_update": (False, "low"),
    "hubspot_notes_create": (True, "low"),
    "hubspot_owners_list": (False, "low"),
    "hubspot_pipelines_list": (False, "low"),
    "stripe_balance_get": (False, "low"),
    "stripe_charges_get": (False, "low"),
    "stripe_charges_list": (False, "low"),
    "stripe_customers_create": (True, "low"),
    "stripe_customers_get": (False, "low"),
    "stripe_customers_search": (False, "low"),
    "stripe_invoices_create": (True, "low"),
    "stripe_invoices_finalize": (False, "high"),
    "stripe_invoices_list": (False, "low"),
    "stripe_invoices_send": (True, "high"),
    "stripe_payment_intents_get": (False, "low"),
    "stripe_payment_intents_list": (False, "low"),
    "stripe_payment_links_create": (True, "low"),
    "stripe_refunds_create": (True, "high"),
}


def test_sink_and_risk_as_decided() -> None:
    assert sorted(SINK_AND_RISK) == OURS
    for name, (sink, risk) in SINK_AND_RISK.items():
        policy = TOOLS[name].policy
        assert (policy.sink, policy.risk) == (sink, risk), name


@pytest.mark.parametrize(
    "name", [n for n in OURS if TOOLS[n].policy.read_only and "limit" in TOOLS[n].input_schema["properties"]]
)
def test_list_tools_are_clamped_by_max_results(name: str) -> None:
    arguments = {"query": "ada"} if name == "stripe_customers_search" else {}
    decision = _decide(name, {"max_results": 5}, {**arguments, "limit": 100})
    assert decision.allowed and decision.changes == {"limit": 5} and decision.notes


# Allow-lists: a call inside is allowed, one outside refused, naming the allow-list.

CALLS: list[tuple[str, dict[str, Any], dict[str, Any], CallFacts | None, dict[str, Any], CallFacts | None, str]] = [
    # (tool, constraints, inside arguments, facts, outside arguments, facts, allow-list)
    ("hubspot_contacts_get", IDS, {"contact_id": "51"}, None, {"contact_id": "52"}, None, "object_ids"),
    (
        "hubspot_contacts_update",
        IDS,
        {"contact_id": "51", "jobtitle": "CTO"},
        None,
        {"contact_id": "52", "jobtitle": "CTO"},
        None,
        "object_ids",
    ),
    ("hubspot_companies_get", IDS, {"company_id": "1001"}, None, {"company_id": "1002"}, None, "object_ids"),
    (
        "hubspot_companies_update",
        IDS,
        {"company_id": "1001", "city": "Leeds"},
        None,
        {"company_id": "1002", "city": "Leeds"},
        None,
        "object_ids",
    ),
    ("hubspot_deals_search", PIPES, {"pipeline": "default"}, None, {"pipeline": "partners"}, None, "pipelines"),
    ("hubspot_deals_get", IDS, {"deal_id": "1010"}, None, {"deal_id": "1011"}, None, "object_ids"),
    # The deal's own pipeline, resolved by the hub: unknown (no facts) is refused too.
    ("hubspot_deals_get", PIPES, {"deal_id": "1010"}, IN_PIPELINE, {"deal_id": "1010"}, OUT_PIPELINE, "pipelines"),
    ("hubspot_deals_get", PIPES, {"deal_id": "1010"}, IN_PIPELINE, {"deal_id": "1010"}, None, "pipelines"),
    (
        "hubspot_deals_update",
        IDS,
        {"deal_id": "1010", "dealstage": "closedwon"},
        None,
        {"deal_id": "1011", "dealstage": "closedwon"},
        None,
        "object_ids",
    ),
    # Moving a deal: both the pipeline it goes to and the one it is in must be allowed.
    (
        "hubspot_deals_update",
        PIPES,
        {"deal_id": "1010", "pipeline": "default", "dealstage": "closedwon"},
        IN_PIPELINE,
        {"deal_id": "1010", "pipeline": "partners", "dealstage": "signed"},
        IN_PIPELINE,
        "pipelines",
    ),
    (
        "hubspot_deals_update",
        PIPES,
        {"deal_id": "1010", "dealstage": "closedwon"},
        IN_PIPELINE,
        {"deal_id": "1010", "pipeline": "default", "dealstage": "closedwon"},
        OUT_PIPELINE,
        "pipelines",
    ),
    (
        "hubspot_deals_create",
        PIPES,
        {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "pipeline": "default"},
        None,
        {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "pipeline": "partners"},
        None,
        "pipelines",
    ),
    (
        "hubspot_notes_create",
        IDS,
        {"body": "Called, will renew.", "contact_id": "51", "deal_id": "1010"},
        None,
        {"body": "Called, will renew.", "contact_id": "51", "company_id": "1002"},
        None,
        "object_ids",
    ),
    (
        "stripe_customers_get",
        CUS,
        {"customer_id": "cus_Allowed1"},
        None,
        {"customer_id": "cus_Other1"},
        None,
        "customers",
    ),
    (
        "stripe_customers_create",
        DOMAINS,
        {"email": "ada@example.com", "name": "Ada Lovelace"},
        None,
        {"email": "ada@evil.test", "name": "Ada Lovelace"},
        None,
        "recipients_domain",
    ),
    ("stripe_invoices_list", CUS, {"customer": "cus_Allowed1"}, None, {"customer": "cus_Other1"}, None, "customers"),
    (
        "stripe_invoices_create",
        CUS,
        {"customer": "cus_Allowed1", "items": [{"description": "Consulting", "unit_amount": 5000}]},
        None,
        {"customer": "cus_Other1", "items": [{"description": "Consulting", "unit_amount": 5000}]},
        None,
        "customers",
    ),
    (
        "stripe_invoices_finalize",
        CUS,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        OWN_CUSTOMER,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        OTHER_CUSTOMER,
        "customers",
    ),
    (
        "stripe_invoices_finalize",
        CUS,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        OWN_CUSTOMER,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        None,
        "customers",
    ),
    (
        "stripe_invoices_send",
        CUS,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        OWN_CUSTOMER,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        OTHER_CUSTOMER,
        "customers",
    ),
    # Who the invoice is emailed to, resolved by the hub (the customer's email).
    (
        "stripe_invoices_send",
        DOMAINS,
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        CallFacts(resources={"recipients_domain": ["ada@example.com"]}),
        {"invoice_id": "in_1MtHbELkdIwHu7ix"},
        CallFacts(resources={"recipients_domain": ["ada@evil.test"]}),
        "recipients_domain",
    ),
    (
        "stripe_payment_intents_list",
        CUS,
        {"customer": "cus_Allowed1"},
        None,
        {"customer": "cus_Other1"},
        None,
        "customers",
    ),
    (
        "stripe_payment_intents_get",
        CUS,
        {"payment_intent_id": "pi_3MtwBwLkdIwHu7ix"},
        OWN_CUSTOMER,
        {"payment_intent_id": "pi_3MtwBwLkdIwHu7ix"},
        OTHER_CUSTOMER,
        "customers",
    ),
    ("stripe_charges_list", CUS, {"customer": "cus_Allowed1"}, None, {"customer": "cus_Other1"}, None, "customers"),
    (
        "stripe_charges_get",
        CUS,
        {"charge_id": "ch_3MmlLrLkdIwHu7ix"},
        OWN_CUSTOMER,
        {"charge_id": "ch_3MmlLrLkdIwHu7ix"},
        OTHER_CUSTOMER,
        "customers",
    ),
    (
        "stripe_refunds_create",
        CUS,
        {"charge": "ch_3MmlLrLkdIwHu7ix", "amount": 500},
        OWN_CUSTOMER,
        {"charge": "ch_3MmlLrLkdIwHu7ix", "amount": 500},
        OTHER_CUSTOMER,
        "customers",
    ),
    (
        "stripe_refunds_create",
        CUS,
        {"payment_intent": "pi_3MtwBwLkdIwHu7ix"},
        OWN_CUSTOMER,
        {"payment_intent": "pi_3MtwBwLkdIwHu7ix"},
        None,
        "customers",
    ),
]


@pytest.mark.parametrize(
    ("name", "constraints", "inside", "inside_facts", "outside", "outside_facts", "allow_list"),
    CALLS,
    ids=[f"{c[0]}-{c[6]}-{i}" for i, c in enumerate(CALLS)],
)
def test_allow_lists_admit_inside_and_refuse_outside(
    name: str,
    constraints: dict[str, Any],
    inside: dict[str, Any],
    inside_facts: CallFacts | None,
    outside: dict[str, Any],
    outside_facts: CallFacts | None,
    allow_list: str,
) -> None:
    assert _decide(name, constraints, inside, inside_facts).allowed
    _refused(_decide(name, constraints, outside, outside_facts), allow_list)


def test_every_tool_touching_an_allow_list_is_exercised() -> None:
    exercised = {c[0] for c in CALLS}
    touching = {n for n in OURS if TOOLS[n].policy.resources or TOOLS[n].policy.resolved_resources}
    creating = {"hubspot_contacts_create", "hubspot_companies_create"}  # refused whole, below
    assert touching - creating <= exercised


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("hubspot_contacts_create", {"email": "ada@example.com", "firstname": "Ada"}),
        ("hubspot_companies_create", {"name": "Acme", "domain": "acme.example"}),
        ("hubspot_deals_create", {"dealname": "Acme - annual", "dealstage": "appointmentscheduled"}),
        ("stripe_customers_create", {"email": "ada@example.com"}),
    ],
)
def test_creating_a_record_is_refused_under_an_id_allow_list(name: str, arguments: dict[str, Any]) -> None:
    """A new record's id is known only to the provider: a grant limited to listed records may not add others
    (unless the hub resolves the new record as inside, which it does not)."""
    allow_list = "customers" if name.startswith("stripe") else "object_ids"
    constraints = CUS if allow_list == "customers" else IDS
    _refused(_decide(name, constraints, arguments), allow_list)
    assert _decide(name, {"rate": {"per_minute": 10}}, arguments).allowed


def test_deal_associations_are_checked_against_object_ids_before_the_new_record() -> None:
    args = {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "company_id": "1002"}
    decision = _decide("hubspot_deals_create", IDS, args)
    _refused(decision, "object_ids")
    assert "company_id" in decision.detail


@pytest.mark.parametrize(
    ("name", "constraints", "arguments"),
    [
        ("hubspot_contacts_search", IDS, {"query": "ada"}),
        ("hubspot_companies_search", IDS, {"query": "acme"}),
        ("hubspot_deals_search", IDS, {"dealstage": "closedwon"}),
        ("hubspot_deals_search", PIPES, {}),
        ("hubspot_pipelines_list", PIPES, {}),
        ("stripe_customers_search", CUS, {"query": "email:'ada@example.com'"}),
        ("stripe_invoices_list", CUS, {}),
        ("stripe_payment_intents_list", CUS, {}),
        ("stripe_charges_list", CUS, {}),
    ],
)
def test_lists_without_a_listed_argument_are_allowed_and_filtered(
    name: str, constraints: dict[str, Any], arguments: dict[str, Any]
) -> None:
    decision = _decide(name, constraints, arguments)
    assert decision.allowed
    assert any(r.rule == "allow_list" and r.effect == "filter" for r in decision.rules)


@pytest.mark.parametrize(
    ("name", "constraints", "arguments"),
    [
        ("hubspot_owners_list", IDS, {}),
        ("hubspot_owners_list", PIPES, {"email": "sam@example.com"}),
        ("hubspot_pipelines_list", IDS, {}),
        ("hubspot_contacts_get", PIPES, {"contact_id": "51"}),
        ("stripe_balance_get", CUS, {}),
        ("stripe_payment_links_create", CUS, {"price": "price_1MoBy5LkdIwHu7ix"}),
    ],
)
def test_tools_outside_an_allow_list_are_not_refused_by_it(
    name: str, constraints: dict[str, Any], arguments: dict[str, Any]
) -> None:
    decision = _decide(name, constraints, arguments)
    assert decision.allowed
    assert any(r.rule == "allow_list" and "does not apply" in r.detail for r in decision.rules)


# Amounts: max_amount + currency, and approval conditions, in the unit each tool declares.

REFUND = {"charge": "ch_3MmlLrLkdIwHu7ix"}
USD = CallFacts(currency="usd")
LIMITS = {"max_amount": 5000, "currency": "usd"}


def test_refund_max_amount_and_currency() -> None:
    assert _decide("stripe_refunds_create", LIMITS, {**REFUND, "amount": 2500}, USD).allowed
    _refused(_decide("stripe_refunds_create", LIMITS, {**REFUND, "amount": 9000}, USD), "max_amount")
    _refused(
        _decide("stripe_refunds_create", LIMITS, {**REFUND, "amount": 2500}, CallFacts(currency="eur")), "currency"
    )
    # The currency is the charge's, which only the hub can look up: unknown is refused.
    _refused(_decide("stripe_refunds_create", LIMITS, {**REFUND, "amount": 2500}), "currency")
    # A full refund names no amount: the hub resolves the refundable amount, or the call is refused.
    _refused(_decide("stripe_refunds_create", LIMITS, REFUND, USD), "max_amount")
    assert _decide("stripe_refunds_create", LIMITS, REFUND, CallFacts(amount=1200, currency="usd")).allowed
    _refused(_decide("stripe_refunds_create", LIMITS, REFUND, CallFacts(amount=120_000, currency="usd")), "max_amount")


def test_refund_approval_condition_on_the_amount() -> None:
    approval = {"approval": "amount > 2000"}
    big = _decide("stripe_refunds_create", approval, {**REFUND, "amount": 5000})
    assert big.outcome == "pending_approval" and big.reason == "approval_required"
    assert _decide("stripe_refunds_create", approval, {**REFUND, "amount": 1500}).allowed
    # A full refund of unknown size waits for a human.
    assert _decide("stripe_refunds_create", approval, REFUND).pending
    assert _decide("stripe_refunds_create", approval, REFUND, CallFacts(amount=800)).allowed


INVOICE = {"customer": "cus_Allowed1", "currency": "usd"}


def test_invoice_amount_is_the_sum_of_its_lines() -> None:
    limits = {"max_amount": 10_000, "currency": "usd"}
    lines = [
        {"description": "Seats", "unit_amount": 3000, "quantity": 2},
        {"description": "Setup", "unit_amount": 1000},
    ]
    assert _decide("stripe_invoices_create", limits, {**INVOICE, "items": lines}).allowed  # 7000
    too_much = [{"description": "Seats", "unit_amount": 6000, "quantity": 2}]
    _refused(_decide("stripe_invoices_create", limits, {**INVOICE, "items": too_much}), "max_amount")
    euros = {**INVOICE, "currency": "eur", "items": lines}
    _refused(_decide("stripe_invoices_create", limits, euros), "currency")
    # No currency given: the customer's, which the hub resolves.
    no_currency = {"customer": "cus_Allowed1", "items": lines}
    _refused(_decide("stripe_invoices_create", limits, no_currency), "currency")
    assert _decide("stripe_invoices_create", limits, no_currency, USD).allowed
    assert _decide("stripe_invoices_create", {"approval": "amount > 2000"}, {**INVOICE, "items": lines}).pending
    small = [{"description": "Setup", "unit_amount": 1500}]
    assert _decide("stripe_invoices_create", {"approval": "amount > 2000"}, {**INVOICE, "items": small}).allowed


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("stripe_invoices_finalize", {"invoice_id": "in_1MtHbELkdIwHu7ix"}),
        ("stripe_invoices_send", {"invoice_id": "in_1MtHbELkdIwHu7ix"}),
        ("stripe_payment_links_create", {"price": "price_1MoBy5LkdIwHu7ix", "quantity": 2}),
    ],
)
def test_amounts_only_the_provider_knows_come_from_the_hub(name: str, arguments: dict[str, Any]) -> None:
    _refused(_decide(name, LIMITS, arguments), "max_amount")
    assert _decide(name, LIMITS, arguments, CallFacts(amount=4000, currency="usd")).allowed
    _refused(_decide(name, LIMITS, arguments, CallFacts(amount=6000, currency="usd")), "max_amount")
    _refused(_decide(name, LIMITS, arguments, CallFacts(amount=4000, currency="gbp")), "currency")
    assert _decide(name, {"approval": "amount > 2000"}, arguments, CallFacts(amount=4000)).pending
    assert _decide(name, {"approval": "amount > 2000"}, arguments, CallFacts(amount=1000)).allowed


def test_deal_amounts_are_whole_units() -> None:
    assert TOOLS["hubspot_deals_update"].policy.amount_unit == "major"
    limits = {"max_amount": 50_000}
    assert _decide("hubspot_deals_update", limits, {"deal_id": "1010", "amount": 12_000.5}).allowed
    _refused(_decide("hubspot_deals_update", limits, {"deal_id": "1010", "amount": 60_000}), "max_amount")
    create = {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "amount": 3000}
    assert _decide("hubspot_deals_create", {"approval": "amount > 2000"}, create).pending
    assert _decide("hubspot_deals_create", {"approval": "amount > 2000"}, {**create, "amount": 900}).allowed


# allowed_properties on CRM (and customer) writes.

PROPERTY_CALLS = [
    # (tool, allowed, an allowed call, a call setting another property, the property refused)
    (
        "hubspot_contacts_update",
        ["jobtitle", "lifecyclestage"],
        {"contact_id": "51", "jobtitle": "CTO", "lifecyclestage": "customer"},
        {"contact_id": "51", "jobtitle": "CTO", "email": "ada@evil.test"},
        "email",
    ),
    (
        "hubspot_contacts_create",
        ["email", "firstname", "lastname"],
        {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"},
        {"email": "ada@example.com", "phone": "+44 20 7946 0000"},
        "phone",
    ),
    (
        "hubspot_companies_update",
        ["city", "employees"],
        {"company_id": "1001", "city": "Leeds", "employees": 40},
        {"company_id": "1001", "city": "Leeds", "owner_id": "77"},
        "owner_id",
    ),
    (
        "hubspot_companies_create",
        ["name", "domain"],
        {"name": "Acme", "domain": "acme.example"},
        {"name": "Acme", "industry": "COMPUTER_SOFTWARE"},
        "industry",
    ),
    (
        "hubspot_deals_update",
        ["dealstage", "closedate"],
        {"deal_id": "1010", "dealstage": "closedwon", "closedate": "2025-03-01"},
        {"deal_id": "1010", "dealstage": "closedwon", "amount": 99_000},
        "amount",
    ),
    (
        "hubspot_deals_create",
        ["dealname", "dealstage", "pipeline"],
        {"dealname": "Acme - annual", "dealstage": "appointmentscheduled"},
        {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "owner_id": "77"},
        "owner_id",
    ),
    (
        "hubspot_notes_create",
        ["body"],
        {"body": "Called, will renew.", "contact_id": "51"},
        {"body": "Called, will renew.", "contact_id": "51", "timestamp": "2025-01-02T10:00:00Z"},
        "timestamp",
    ),
    (
        "stripe_customers_create",
        ["email", "name"],
        {"email": "ada@example.com", "name": "Ada Lovelace"},
        {"email": "ada@example.com", "description": "VIP"},
        "description",
    ),
]


@pytest.mark.parametrize(("name", "allowed", "inside", "outside", "refused"), PROPERTY_CALLS)
def test_allowed_properties_refuse_other_properties(
    name: str, allowed: list[str], inside: dict[str, Any], outside: dict[str, Any], refused: str
) -> None:
    constraints = {"allowed_properties": allowed}
    assert _decide(name, constraints, inside).allowed
    decision = _decide(name, constraints, outside)
    _refused(decision, "allowed_properties")
    assert repr(refused) in decision.detail


def test_association_ids_are_not_properties() -> None:
    args = {"dealname": "Acme - annual", "dealstage": "appointmentscheduled", "company_id": "1001", "contact_id": "51"}
    assert _decide("hubspot_deals_create", {"allowed_properties": ["dealname", "dealstage", "pipeline"]}, args).allowed


# Results: filtered to the allow-lists, then masked.


def _contacts() -> ContactPage:
    return ContactPage(
        contacts=[
            Contact(id="51", email="grace@example.com", firstname="Grace", lastname="Hopper", phone="+1 555 123 4567"),
            Contact(id="52", email="alan@example.org", firstname="Alan", lastname="Turing", phone="+44 20 7946 0001"),
            Contact(id="53", email="ada@example.net", firstname="Ada", lastname="Lovelace", phone="(555) 987-6543"),
        ],
        total=3,
    )


def test_contact_search_keeps_allowed_records_and_masks_emails_and_phones() -> None:
    constraints = {"object_ids": ["51", "53"], "redact": ["pii.email", "pii.phone"]}
    shaped = _shape("hubspot_contacts_search", constraints, {"query": ""}, _contacts())
    assert [c["id"] for c in shaped["contacts"]] == ["51", "53"]
    assert [c["email"] for c in shaped["contacts"]] == ["g***@example.com", "a***@example.net"]
    assert [c["phone"] for c in shaped["contacts"]] == ["***67", "***43"]
    assert shaped["contacts"][0]["firstname"] == "Grace"  # names were not asked to be masked
    assert "alan@example.org" not in repr(shaped)


def test_contact_get_masks_names_when_asked() -> None:
    contact = _contacts().contacts[0]
    shaped = _shape("hubspot_contacts_get", {"redact": ["pii.name", "pii.email"]}, {"contact_id": "51"}, contact)
    assert shaped["firstname"].startswith("[redacted:") and shaped["lastname"].startswith("[redacted:")
    assert shaped["email"] == "g***@example.com" and shaped["id"] == "51"


FILTERS: list[tuple[str, dict[str, Any], dict[str, Any], BaseModel, str, list[str]]] = [
    # (tool, constraints, arguments, result, list key, ids kept)
    (
        "hubspot_companies_search",
        IDS,
        {},
        CompanyPage(companies=[Company(id="1001", name="Acme"), Company(id="1002", name="Globex")]),
        "companies",
        ["1001"],
    ),
    (
        "hubspot_deals_search",
        PIPES,
        {},
        DealPage(
            deals=[
                Deal(id="1010", pipeline="default", amount=12000),
                Deal(id="1011", pipeline="partners", amount=5000),
                Deal(id="1012", amount=10),
            ]
        ),
        "deals",
        ["1010"],
    ),
    (
        "hubspot_deals_search",
        IDS,
        {},
        DealPage(deals=[Deal(id="1010", pipeline="default"), Deal(id="1011", pipeline="default")]),
        "deals",
        ["1010"],
    ),
    (
        "hubspot_pipelines_list",
        PIPES,
        {},
        PipelineList(
            pipelines=[
                Pipeline(id="default", label="Sales", stages=[Stage(id="closedwon", label="Won")]),
                Pipeline(id="partners", label="Partners", stages=[]),
            ]
        ),
        "pipelines",
        ["default"],
    ),
    (
        "stripe_customers_search",
        CUS,
        {"query": "name~'ada'"},
        CustomerPage(customers=[Customer(id="cus_Allowed1", name="Ada"), Customer(id="cus_Other1", name="Ada B")]),
        "customers",
        ["cus_Allowed1"],
    ),
    (
        "stripe_invoices_list",
        CUS,
        {},
        InvoicePage(
            invoices=[
                Invoice(id="in_1", customer="cus_Allowed1", total=7000),
                Invoice(id="in_2", customer="cus_Other1", total=100),
                Invoice(id="in_3", total=5),
            ]
        ),
        "invoices",
        ["in_1"],
    ),
    (
        "stripe_payment_intents_list",
        CUS,
        {},
        PaymentIntentPage(
            payment_intents=[
                PaymentIntent(id="pi_1", status="succeeded", amount=100, currency="usd", customer="cus_Other1"),
                PaymentIntent(id="pi_2", status="succeeded", amount=200, currency="usd", customer="cus_Allowed1"),
            ]
        ),
        "payment_intents",
        ["pi_2"],
    ),
    (
        "stripe_charges_list",
        CUS,
        {},
        ChargePage(
            charges=[
                Charge(id="ch_1", status="succeeded", amount=100, currency="usd", customer="cus_Allowed1"),
                Charge(id="ch_2", status="succeeded", amount=100, currency="usd"),  # a guest payment
            ]
        ),
        "charges",
        ["ch_1"],
    ),
]


@pytest.mark.parametrize(
    ("name", "constraints", "arguments", "result", "key", "kept"),
    FILTERS,
    ids=[f"{f[0]}-{next(iter(f[1]))}" for f in FILTERS],
)
def test_lists_keep_only_allowed_records(
    name: str, constraints: dict[str, Any], arguments: dict[str, Any], result: BaseModel, key: str, kept: list[str]
) -> None:
    shaped = _shape(name, constraints, arguments, result)
    assert [item["id"] for item in shaped[key]] == kept


def test_a_deals_associations_are_filtered_to_allowed_ids() -> None:
    deal = Deal(id="1010", pipeline="default", company_ids=["1001", "1002"], contact_ids=["51", "52", "53"])
    shaped = _shape("hubspot_deals_get", IDS, {"deal_id": "1010"}, deal)
    assert shaped["company_ids"] == ["1001"] and shaped["contact_ids"] == ["51"]


def test_stripe_customer_names_emails_and_phones_are_masked() -> None:
    page = CustomerPage(
        customers=[Customer(id="cus_Allowed1", email="ada@example.com", name="Ada Lovelace", phone="+15551234567")]
    )
    constraints = {"redact": ["pii.email", "pii.phone", "pii.name"]}
    shaped = _shape("stripe_customers_search", constraints, {"query": "name~'ada'"}, page)
    customer = shaped["customers"][0]
    assert customer["email"] == "a***@example.com" and customer["phone"] == "***67"
    assert customer["name"].startswith("[redacted:") and customer["id"] == "cus_Allowed1"


def test_card_details_and_amounts_are_masked_by_label() -> None:
    charge = Charge(id="ch_1", status="succeeded", amount=4200, currency="usd", card=Card(brand="visa", last4="4242"))
    card_only = _shape(
        "stripe_charges_get", {"redact": ["financial.card"]}, {"charge_id": "ch_3MmlLrLkdIwHu7ix"}, charge
    )
    assert card_only["card"]["brand"].startswith("[redacted:") and card_only["card"]["last4"].startswith("[redacted:")
    assert card_only["amount"] == 4200
    everything = _shape("stripe_charges_list", {"redact": ["financial"]}, {}, ChargePage(charges=[charge]))
    assert str(everything["charges"][0]["amount"]).startswith("[redacted:")
    assert everything["charges"][0]["card"]["last4"].startswith("[redacted:")


def test_owner_emails_are_masked() -> None:
    page = OwnerPage(owners=[Owner(id="77", email="sam@example.com", firstname="Sam", lastname="Jones")])
    shaped = _shape("hubspot_owners_list", {"redact": ["pii.email"]}, {}, page)
    assert shaped["owners"][0]["email"] == "s***@example.com"


# Flow: what a CRM or Stripe read returned is found again in a sink's arguments.


def _read(name: str, result: BaseModel) -> dict[str, FlowOrigin]:
    policy = TOOLS[name].policy
    data = result.model_dump(mode="json", exclude_none=True)
    return {fp: FlowOrigin(label, name) for fp, label in fingerprint_result(data, policy, KEY).items()}


def test_a_contacts_email_pasted_into_a_note_is_blocked_but_a_crm_update_is_not() -> None:
    stored = _read("hubspot_contacts_get", _contacts().contacts[0])
    note = {"body": "Grace (GRACE@example.com, 555 123 4567) asked for a call back.", "deal_id": "1010"}
    t = TOOLS["hubspot_notes_create"]
    common: dict[str, Any] = {
        "tool": t.name,
        "provider": t.provider,
        "needed": t.scopes,
        "grants": _grants(t, {}),
        "connection": None,
        "policy": t.policy,
        "arguments": t.input_model.model_validate(note).model_dump(),
    }
    blocked = decide(**common, flow=FlowContext(stored, KEY))
    assert blocked.reason == "flow_blocked" and "hubspot_contacts_get" in blocked.detail
    rules = [("pii.email", "crm.notes.write"), ("pii.phone", "crm.notes.write")]
    assert decide(**common, flow=FlowContext(stored, KEY, rules=rules)).allowed
    update = TOOLS["hubspot_contacts_update"]
    kept_inside = decide(
        tool=update.name,
        provider=update.provider,
        needed=update.scopes,
        grants=_grants(update, {}),
        connection=None,
        policy=update.policy,
        arguments={"contact_id": "51", "email": "grace@example.com"},
        flow=FlowContext(stored, KEY),
    )
    assert kept_inside.allowed


def test_a_stripe_customer_name_is_fingerprinted() -> None:
    stored = _read("stripe_customers_get", Customer(id="cus_Allowed1", email="ada@example.com", name="Ada Lovelace"))
    assert {origin.label for origin in stored.values()} >= {"pii.email", "pii.name"}
