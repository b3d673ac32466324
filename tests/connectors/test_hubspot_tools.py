"""Each HubSpot tool against the HubSpot sandbox on loopback, through the real SDK client: shaped output,
paging, associations, and every provider failure mapped to its typed connector error."""

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
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
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools import (
    Company,
    CompanyPage,
    Contact,
    ContactPage,
    Deal,
    DealPage,
    Note,
    OwnerPage,
    PipelineList,
)
from tests.connectors.hubspot_sandbox import ALL_SCOPES, hubspot_client
from tests.harness import Sandbox, free_port, run_sandbox

TOOLS = {t.name: t for t in CONNECTORS["hubspot"].tools}
READ_WRITE = "crm.objects.contacts.read crm.objects.contacts.write"
CONTACT_FIELDS = set(Contact.model_fields)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path_factory.mktemp("hubspot")) as running:
        yield running


def _client(sandbox: Sandbox, scopes: str = READ_WRITE) -> HubSpotClient:
    return hubspot_client(sandbox, scopes)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[HubSpotClient]:
    built = _client(sandbox)
    yield built
    built.close()


@pytest.fixture
async def crm(sandbox: Sandbox) -> AsyncIterator[HubSpotClient]:
    """A client whose token carries every scope the connector can ask for."""
    built = _client(sandbox, ALL_SCOPES)
    yield built
    built.close()


async def _run(client: HubSpotClient, name: str, /, **arguments: Any) -> BaseModel:
    tool = TOOLS[name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


def _contact(result: BaseModel) -> Contact:
    assert isinstance(result, Contact)
    # Shaped: exactly the tool's fields, none of HubSpot's envelope (properties, archived, createdAt, hs_*).
    assert set(result.model_dump()) == CONTACT_FIELDS
    return result


def test_every_hubspot_tool_is_exercised_here() -> None:
    exercised = {
        "hubspot_contacts_create",
        "hubspot_contacts_search",
        "hubspot_contacts_get",
        "hubspot_contacts_update",
        "hubspot_companies_create",
        "hubspot_companies_search",
        "hubspot_companies_get",
        "hubspot_companies_update",
        "hubspot_deals_create",
        "hubspot_deals_search",
        "hubspot_deals_get",
        "hubspot_deals_update",
        "hubspot_pipelines_list",
        "hubspot_notes_create",
        "hubspot_owners_list",
    }
    missing = set(TOOLS) - exercised
    assert not missing, f"add a sandbox test for {sorted(missing)} to this module"


async def test_create_then_search_finds_it_then_get_then_update(client: HubSpotClient) -> None:
    tag = uuid.uuid4().hex[:10]
    email = f"grace.{tag}@navy.example.com"
    created = _contact(
        await _run(
            client,
            "hubspot_contacts_create",
            email=email,
            firstname="Grace",
            lastname="Hopper",
            phone="+1 555 0199",
            company="US Navy",
            jobtitle="Rear Admiral",
        )
    )
    assert created.id.isdigit()
    assert (created.email, created.firstname, created.lastname) == (email, "Grace", "Hopper")
    assert (created.phone, created.company, created.jobtitle) == ("+1 555 0199", "US Navy", "Rear Admiral")
    assert created.updated_at

    page = await _run(client, "hubspot_contacts_search", query=tag)
    assert isinstance(page, ContactPage)
    assert page.total == 1 and page.next_cursor is None
    assert [_contact(c).id for c in page.contacts] == [created.id]
    assert page.contacts[0].email == email

    got = _contact(await _run(client, "hubspot_contacts_get", contact_id=created.id))
    assert got.model_dump(exclude={"updated_at"}) == created.model_dump(exclude={"updated_at"})

    updated = _contact(
        await _run(
            client, "hubspot_contacts_update", contact_id=created.id, jobtitle="Commodore", lifecyclestage="customer"
        )
    )
    assert (updated.id, updated.jobtitle, updated.lifecyclestage) == (created.id, "Commodore", "customer")

    again = _contact(await _run(client, "hubspot_contacts_get", contact_id=created.id))
    assert (again.jobtitle, again.lifecyclestage) == ("Commodore", "customer")
    assert (again.email, again.firstname, again.phone) == (email, "Grace", "+1 555 0199")  # left out: kept


async def test_next_cursor_pages_through_every_contact_once(client: HubSpotClient) -> None:
    seen: list[str] = []
    updated: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = await _run(client, "hubspot_contacts_search", limit=2, after=after)
        assert isinstance(page, ContactPage)
        assert len(page.contacts) <= 2
        seen += [_contact(c).id for c in page.contacts]
        updated += [c.updated_at or "" for c in page.contacts]
        pages += 1
        if page.next_cursor is None:
            break
        assert len(page.contacts) == 2
        after = page.next_cursor
    assert page.total is not None and page.total >= 6  # the sandbox seeds six contacts
    assert len(seen) == len(set(seen)) == page.total
    assert pages == -(-page.total // 2)
    assert updated == sorted(updated, reverse=True)  # newest first, across pages


async def test_a_second_contact_with_the_same_email_is_rejected(client: HubSpotClient) -> None:
    email = f"dup.{uuid.uuid4().hex[:10]}@example.com"
    await _run(client, "hubspot_contacts_create", email=email)
    with pytest.raises(ProviderRejected, match="Contact already exists"):
        await _run(client, "hubspot_contacts_create", email=email)


async def test_update_without_fields_is_rejected_before_any_call(sandbox: Sandbox, client: HubSpotClient) -> None:
    before = sandbox.stats()["api_requests"]
    with pytest.raises(ProviderRejected, match="nothing to update"):
        await _run(client, "hubspot_contacts_update", contact_id="1001")
    assert sandbox.stats()["api_requests"] == before


async def test_unknown_contact_is_provider_not_found(client: HubSpotClient) -> None:
    with pytest.raises(ProviderNotFound):
        await _run(client, "hubspot_contacts_get", contact_id="987654321")
    with pytest.raises(ProviderNotFound):
        await _run(client, "hubspot_contacts_update", contact_id="987654321", jobtitle="Nobody")


async def test_expired_token_is_provider_auth_expired(sandbox: Sandbox) -> None:
    expired = _client(sandbox)
    try:
        sandbox.control("expire-tokens")
        with pytest.raises(ProviderAuthExpired):
            await _run(expired, "hubspot_contacts_get", contact_id="1001")
    finally:
        expired.close()


async def test_missing_scope_is_provider_forbidden_naming_the_scope(sandbox: Sandbox) -> None:
    reader = _client(sandbox, scopes="crm.objects.contacts.read")
    try:
        assert isinstance(await _run(reader, "hubspot_contacts_search", query="ada"), ContactPage)
        with pytest.raises(ProviderForbidden, match=r"crm\.objects\.contacts\.write") as caught:
            await _run(reader, "hubspot_contacts_create", email="eve@example.com")
        assert caught.value.missing_scopes == ("crm.objects.contacts.write",)
    finally:
        reader.close()


async def test_throttled_call_is_provider_rate_limited_with_retry_after(
    sandbox: Sandbox, client: HubSpotClient
) -> None:
    httpx.post(f"{sandbox.url}/_control/throttle", json={"count": 1, "retry_after": 7}).raise_for_status()
    with pytest.raises(ProviderRateLimited) as caught:
        await _run(client, "hubspot_contacts_search", query="ada")
    assert caught.value.retry_after == 7.0
    assert isinstance(await _run(client, "hubspot_contacts_search", query="ada"), ContactPage)  # one call only


# -- companies ---------------------------------------------------------------------------------------------


def _company(result: BaseModel) -> Company:
    assert isinstance(result, Company)
    assert set(result.model_dump()) == set(Company.model_fields)
    return result


async def test_company_create_search_get_update(crm: HubSpotClient) -> None:
    tag = uuid.uuid4().hex[:10]
    created = _company(
        await _run(
            crm,
            "hubspot_companies_create",
            name=f"Harvard Mark I {tag}",
            domain=f"Mark-One-{tag}.Example.com",
            industry="COMPUTER_HARDWARE",
            phone="+1 617 555 0144",
            city="Cambridge",
            state="Massachusetts",
            country="United States",
            employees=12,
            owner_id="41629779",
        )
    )
    assert created.id.isdigit() and created.domain == f"mark-one-{tag}.example.com"  # domains are lowercased
    assert (created.employees, created.owner_id, created.industry) == (12, "41629779", "COMPUTER_HARDWARE")

    page = await _run(crm, "hubspot_companies_search", query=tag)
    assert isinstance(page, CompanyPage)
    assert page.total == 1 and [_company(c).id for c in page.companies] == [created.id]

    got = _company(await _run(crm, "hubspot_companies_get", company_id=created.id))
    assert got.model_dump(exclude={"updated_at"}) == created.model_dump(exclude={"updated_at"})

    updated = _company(
        await _run(crm, "hubspot_companies_update", company_id=created.id, employees=13, owner_id="41629780")
    )
    assert (updated.employees, updated.owner_id) == (13, "41629780")
    again = _company(await _run(crm, "hubspot_companies_get", company_id=created.id))
    assert (again.employees, again.owner_id, again.city) == (13, "41629780", "Cambridge")  # left out: kept


async def test_company_search_pages_through_every_company_once(crm: HubSpotClient) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await _run(crm, "hubspot_companies_search", limit=2, after=after)
        assert isinstance(page, CompanyPage)
        seen += [c.id for c in page.companies]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert page.total is not None and page.total >= 3  # three seeded companies
    assert len(seen) == len(set(seen)) == page.total


async def test_company_update_without_fields_and_unknown_owner_are_rejected(
    sandbox: Sandbox, crm: HubSpotClient
) -> None:
    before = sandbox.stats()["api_requests"]
    with pytest.raises(ProviderRejected, match="nothing to update"):
        await _run(crm, "hubspot_companies_update", company_id="1001")
    assert sandbox.stats()["api_requests"] == before
    with pytest.raises(ProviderRejected, match="not a valid owner id"):
        await _run(crm, "hubspot_companies_update", company_id="1001", owner_id="999")
    with pytest.raises(ProviderNotFound):
        await _run(crm, "hubspot_companies_get", company_id="987654321")


# -- pipelines, deals --------------------------------------------------------------------------------------


async def test_pipelines_list_gives_pipelines_and_stages_in_display_order(crm: HubSpotClient) -> None:
    listed = await _run(crm, "hubspot_pipelines_list")
    assert isinstance(listed, PipelineList)
    assert [(p.id, p.label) for p in listed.pipelines] == [("default", "Sales Pipeline"), ("1203581", "Renewals")]
    sales = listed.pipelines[0]
    assert [s.id for s in sales.stages][:2] == ["appointmentscheduled", "qualifiedtobuy"]
    won = next(s for s in sales.stages if s.id == "closedwon")
    assert (won.label, won.probability, won.is_closed) == ("Closed Won", 1.0, True)
    first = sales.stages[0]
    assert (first.probability, first.is_closed) == (0.2, False)


def _deal(result: BaseModel) -> Deal:
    assert isinstance(result, Deal)
    assert set(result.model_dump()) == set(Deal.model_fields)
    return result


async def test_deal_create_in_a_listed_stage_then_get_search_and_move(crm: HubSpotClient) -> None:
    listed = await _run(crm, "hubspot_pipelines_list")
    assert isinstance(listed, PipelineList)
    renewals = listed.pipelines[1]
    tag = uuid.uuid4().hex[:10]
    created = _deal(
        await _run(
            crm,
            "hubspot_deals_create",
            dealname=f"Compiler Works renewal {tag}",
            pipeline=renewals.id,
            dealstage=renewals.stages[0].id,
            amount=45000.5,
            closedate="2026-01-31",
            owner_id="41629780",
            company_id="1002",
            contact_id="1006",
        )
    )
    assert (created.amount, created.closedate, created.pipeline) == (45000.5, "2026-01-31", renewals.id)
    assert (created.company_ids, created.contact_ids) == (["1002"], ["1006"])

    got = _deal(await _run(crm, "hubspot_deals_get", deal_id=created.id))
    # HubSpot lists a primary company twice (labelled and unlabelled); the tool gives each id once.
    assert (got.company_ids, got.contact_ids, got.owner_id) == (["1002"], ["1006"], "41629780")

    page = await _run(crm, "hubspot_deals_search", pipeline=renewals.id, dealstage=renewals.stages[0].id)
    assert isinstance(page, DealPage)
    assert created.id in [d.id for d in page.deals]
    assert all(d.company_ids is None for d in page.deals)  # search does not fetch associations
    by_text = await _run(crm, "hubspot_deals_search", query=tag)
    assert isinstance(by_text, DealPage) and [d.id for d in by_text.deals] == [created.id]

    moved = _deal(await _run(crm, "hubspot_deals_update", deal_id=created.id, dealstage=renewals.stages[1].id))
    assert moved.dealstage == renewals.stages[1].id
    assert _deal(await _run(crm, "hubspot_deals_get", deal_id=created.id)).amount == 45000.5  # kept


async def test_seeded_deal_has_its_company_and_contact(crm: HubSpotClient) -> None:
    seeded = _deal(await _run(crm, "hubspot_deals_get", deal_id="1010"))
    assert seeded.dealname == "Analytical Engines - annual plan" and seeded.amount == 12000.0
    assert (seeded.company_ids, seeded.contact_ids) == (["1001"], ["1004"])


async def test_deal_stage_outside_its_pipeline_is_rejected(crm: HubSpotClient) -> None:
    with pytest.raises(ProviderRejected, match="allowed options for pipeline 1203581"):
        await _run(crm, "hubspot_deals_create", dealname="Wrong", pipeline="1203581", dealstage="closedwon")
    with pytest.raises(ProviderRejected, match="allowed options for pipeline 1203581"):
        await _run(crm, "hubspot_deals_update", deal_id="1011", pipeline="1203581")  # its stage stays behind
    with pytest.raises(ProviderRejected, match="no companies record with id 987654321"):
        await _run(crm, "hubspot_deals_create", dealname="Orphan", dealstage="qualifiedtobuy", company_id="987654321")
    with pytest.raises(ProviderNotFound):
        await _run(crm, "hubspot_deals_update", deal_id="987654321", amount=1)


# -- owners ------------------------------------------------------------------------------------------------


async def test_owners_list_filters_by_email_and_pages(crm: HubSpotClient) -> None:
    everyone = await _run(crm, "hubspot_owners_list")
    assert isinstance(everyone, OwnerPage)
    assert [o.id for o in everyone.owners] == ["41629779", "41629780", "41629781"]  # the archived one is left out
    dorothy = everyone.owners[1]
    assert (dorothy.firstname, dorothy.lastname, dorothy.teams) == ("Dorothy", "Vaughan", ["Sales", "Support"])
    assert everyone.next_cursor is None

    one = await _run(crm, "hubspot_owners_list", email="MARY.JACKSON@switchboard-demo.example.com")
    assert isinstance(one, OwnerPage) and [(o.id, o.email) for o in one.owners] == [
        ("41629779", "mary.jackson@switchboard-demo.example.com")
    ]

    seen: list[str] = []
    after: str | None = None
    while True:
        page = await _run(crm, "hubspot_owners_list", limit=1, after=after)
        assert isinstance(page, OwnerPage) and len(page.owners) == 1
        seen.append(page.owners[0].id)
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == [o.id for o in everyone.owners]


# -- notes -------------------------------------------------------------------------------------------------


async def test_note_is_attached_to_each_record_given(crm: HubSpotClient) -> None:
    text = f"Called Ada about the renewal ({uuid.uuid4().hex[:8]})."
    note = await _run(
        crm,
        "hubspot_notes_create",
        body=text,
        deal_id="1010",
        contact_id="1004",
        timestamp="2025-03-14T15:09:26.5+01:00",
    )
    assert isinstance(note, Note)
    assert set(note.model_dump()) == set(Note.model_fields)  # id, time and links: never the text
    assert (note.deal_ids, note.contact_ids, note.company_ids) == (["1010"], ["1004"], [])
    assert note.timestamp == "2025-03-14T14:09:26.500Z"

    # What HubSpot now holds: the text and time on the note, and the link seen from both records.
    stored = await crm.call(crm.notes.get_by_id, note_id=note.id, properties=["hs_note_body", "hs_timestamp"])
    assert stored["properties"]["hs_note_body"] == text
    for object_type, api, key in (("deals", crm.deals, "deal_id"), ("contacts", crm.contacts, "contact_id")):
        record = await crm.call(
            api.get_by_id, **{key: "1010" if object_type == "deals" else "1004"}, associations=["notes"]
        )
        links = record["associations"]["notes"]["results"]
        assert {"id": note.id, "type": f"{object_type[:-1]}_to_note"} in links


async def test_note_without_a_record_is_rejected_before_any_call(sandbox: Sandbox, crm: HubSpotClient) -> None:
    before = sandbox.stats()["api_requests"]
    with pytest.raises(ProviderRejected, match="must be attached"):
        await _run(crm, "hubspot_notes_create", body="Floating thought.")
    assert sandbox.stats()["api_requests"] == before
    with pytest.raises(ProviderRejected, match="no deals record with id 987654321"):
        await _run(crm, "hubspot_notes_create", body="Lost.", deal_id="987654321")


async def test_note_needs_the_contacts_write_scope_whatever_it_is_attached_to(sandbox: Sandbox) -> None:
    # HubSpot has no notes scope; its notes API takes the contacts scopes, as the manifest's mapping says.
    deals_only = _client(sandbox, scopes="crm.objects.deals.read crm.objects.deals.write")
    try:
        with pytest.raises(ProviderForbidden, match=r"crm\.objects\.contacts\.write") as caught:
            await _run(deals_only, "hubspot_notes_create", body="Discount agreed.", deal_id="1010")
        assert caught.value.missing_scopes == ("crm.objects.contacts.write",)
    finally:
        deals_only.close()
    manifest = CONNECTORS["hubspot"].manifest
    assert manifest.provider_scopes(["crm.notes.write"]) == ["crm.objects.contacts.write"]


# -- errors from every SDK package ---------------------------------------------------------------------------

# One call per SDK package: each raises its own ApiException class, all mapped alike.
PER_PACKAGE: dict[str, tuple[str, dict[str, Any], str]] = {
    "contacts": ("hubspot_contacts_get", {"contact_id": "1004"}, "crm.objects.contacts.read"),
    "companies": ("hubspot_companies_search", {"query": "engines"}, "crm.objects.companies.read"),
    "deals": ("hubspot_deals_get", {"deal_id": "1010"}, "crm.objects.deals.read"),
    "pipelines": ("hubspot_pipelines_list", {}, "crm.objects.deals.read"),
    "owners": ("hubspot_owners_list", {}, "crm.objects.owners.read"),
    "notes": ("hubspot_notes_create", {"body": "Hello.", "company_id": "1001"}, "crm.objects.contacts.write"),
}


@pytest.mark.parametrize("package", sorted(PER_PACKAGE))
async def test_every_sdk_package_maps_throttling_expiry_and_missing_scope(sandbox: Sandbox, package: str) -> None:
    name, arguments, scope = PER_PACKAGE[package]
    without = " ".join(s for s in ALL_SCOPES.split() if s != scope)
    full, lacking = _client(sandbox, ALL_SCOPES), _client(sandbox, without)
    try:
        httpx.post(f"{sandbox.url}/_control/throttle", json={"count": 1, "retry_after": 3}).raise_for_status()
        with pytest.raises(ProviderRateLimited) as limited:
            await _run(full, name, **arguments)
        assert limited.value.retry_after == 3.0

        with pytest.raises(ProviderForbidden) as forbidden:
            await _run(lacking, name, **arguments)
        assert forbidden.value.missing_scopes == (scope,)

        await _run(full, name, **arguments)  # works before the provider expires the token
        sandbox.control("expire-tokens")
        with pytest.raises(ProviderAuthExpired):
            await _run(full, name, **arguments)
    finally:
        full.close()
        lacking.close()


async def test_every_sdk_package_sends_through_one_kept_alive_connection(sandbox: Sandbox) -> None:
    opened: list[object] = []
    sent: list[tuple[str, str]] = []
    trace = aiohttp.TraceConfig()

    async def on_create(session: object, context: object, params: object) -> None:
        opened.append(params)

    async def on_request(session: object, context: object, params: aiohttp.TraceRequestStartParams) -> None:
        sent.append((params.method, params.url.path))

    trace.on_connection_create_end.append(on_create)
    trace.on_request_start.append(on_request)
    crm = hubspot_client(sandbox, trace_configs=[trace])
    try:
        for name, arguments, _ in PER_PACKAGE.values():
            await _run(crm, name, **arguments)
    finally:
        await crm.aclose()
    # Six SDK packages, each building its own requests, all sent on one socket of the one session.
    assert [path.split("/")[2] for _, path in sent] == ["v3"] * len(PER_PACKAGE)
    assert {path.split("/")[3] for _, path in sent} == {"objects", "pipelines", "owners"}
    assert len(opened) == 1


async def _tool_error(base: str, timeout: float) -> ConnectorError:
    client = HubSpotClient(access_token="t", api_base=base, timeout=timeout)
    try:
        with pytest.raises(ConnectorError) as caught:
            await _run(client, "hubspot_owners_list")
        return caught.value
    finally:
        client.close()


async def test_no_answer_in_time_is_provider_timeout_and_no_server_is_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        timed_out = await _tool_error(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
    assert isinstance(timed_out, ProviderTimeout)
    refused = await _tool_error(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert isinstance(refused, ProviderUnavailable) and "could not be reached" in refused.message
