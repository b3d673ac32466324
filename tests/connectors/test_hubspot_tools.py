"""Each HubSpot tool against the HubSpot sandbox on loopback, through the real SDK client: shaped output,
paging, and every provider failure mapped to its typed connector error."""

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.errors import (
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools import Contact, ContactPage
from hub.demo import approve_consent
from tests.harness import Sandbox, run_sandbox

TOOLS = {t.name: t for t in CONNECTORS["hubspot"].tools}
READ_WRITE = "crm.objects.contacts.read crm.objects.contacts.write"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
CONTACT_FIELDS = set(Contact.model_fields)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path_factory.mktemp("hubspot")) as running:
        yield running


def _access_token(sandbox: Sandbox, scopes: str) -> str:
    """Walk the sandbox's OAuth flow: consent page, "Connect", code exchange."""
    query = urlencode({"client_id": sandbox.client_id, "redirect_uri": REDIRECT, "scope": scopes, "state": "s"})
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, f"{sandbox.url}/oauth/authorize?{query}")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        answer = browser.post(
            f"{sandbox.url}/oauth/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            },
        )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def _client(sandbox: Sandbox, scopes: str = READ_WRITE) -> HubSpotClient:
    return HubSpotClient(access_token=_access_token(sandbox, scopes), api_base=sandbox.url, timeout=10)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[HubSpotClient]:
    built = _client(sandbox)
    yield built
    built.close()


async def _run(client: HubSpotClient, name: str, **arguments: Any) -> BaseModel:
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
