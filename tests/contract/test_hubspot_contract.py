"""The HubSpot connector against HubSpot's published CRM v3 spec, served by prism.

prism checks each request against the spec and answers 422 with an `sl-violations` header when it does not
conform (the connector maps 422 to ProviderRejected); otherwise it answers with the spec's examples.
`Prefer: code=NNN` makes it answer with that status instead, which proves the error mapping.

The spec (`shared/specs/hubspot-crm-v3.json`) describes contacts, companies and deals only. The deal
pipelines API, the owners API and the notes objects API are not in it, so prism cannot serve the tools that
call them (`SANDBOX_ONLY`): their cases run against the HubSpot sandbox instead, the notes request body is
still checked against the spec's generic `SimplePublicObjectInputForCreate` (the objects API takes the same
input for every object type), and their error mapping is covered by tests/connectors/test_hubspot_tools.py.
"""

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

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
from connectors.hubspot.client import HubSpotClient
from tests.connectors.hubspot_sandbox import hubspot_client
from tests.contract.prism import ROOT, serve_prism
from tests.contract.spec import SpecSchemas
from tests.harness import Sandbox, run_sandbox

SPEC = ROOT.parent / "shared/specs/hubspot-crm-v3.json"
TOOLS = {t.name: t for t in CONNECTORS["hubspot"].tools}
# Tools whose HubSpot endpoint the published spec does not describe: the sandbox serves their cases.
SANDBOX_ONLY: dict[str, tuple[str, str]] = {
    "hubspot_pipelines_list": ("get", "/crm/v3/pipelines/{objectType}"),
    "hubspot_owners_list": ("get", "/crm/v3/owners/"),
    "hubspot_notes_create": ("post", "/crm/v3/objects/notes"),
}
PRISM_SERVED = sorted(set(TOOLS) - set(SANDBOX_ONLY))

# Realistic arguments for every tool; a new tool fails `test_tool_request_conforms` until it has a case here.
CASES: dict[str, list[dict[str, Any]]] = {
    "hubspot_contacts_search": [
        {},
        {"query": "ada@analytical-engines.example.com", "limit": 5},
        {"query": "Lovelace", "limit": 100, "after": "20"},
    ],
    "hubspot_contacts_get": [{"contact_id": "51"}],
    "hubspot_contacts_create": [
        {"email": "grace@navy.example.com"},
        {
            "email": "ada@analytical-engines.example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines Ltd",
            "jobtitle": "Founder",
        },
    ],
    "hubspot_contacts_update": [
        {"contact_id": "51", "jobtitle": "Countess"},
        {"contact_id": "51", "email": "ada@lovelace.example.com", "lifecyclestage": "customer", "phone": "+1 555 0110"},
    ],
    "hubspot_companies_search": [
        {},
        {"query": "analytical-engines.example.com", "limit": 5},
        {"query": "Compiler", "limit": 100, "after": "20"},
    ],
    "hubspot_companies_get": [{"company_id": "1001"}],
    "hubspot_companies_create": [
        {"name": "Harvard Mark I"},
        {
            "name": "Analytical Engines Ltd",
            "domain": "analytical-engines.example.com",
            "industry": "COMPUTER_HARDWARE",
            "phone": "+44 20 7946 0000",
            "city": "London",
            "state": "England",
            "country": "United Kingdom",
            "employees": 42,
            "owner_id": "41629779",
        },
    ],
    "hubspot_companies_update": [
        {"company_id": "1001", "employees": 43},
        {"company_id": "1001", "name": "Analytical Engines", "domain": "engines.example.com", "owner_id": "41629780"},
    ],
    "hubspot_deals_search": [
        {},
        {"query": "annual plan", "limit": 5},
        {"pipeline": "default", "dealstage": "contractsent", "limit": 100, "after": "10"},
    ],
    "hubspot_deals_get": [{"deal_id": "1010"}],
    "hubspot_deals_create": [
        {"dealname": "Mark I - support", "dealstage": "appointmentscheduled"},
        {
            "dealname": "Compiler Works - expansion",
            "dealstage": "qualifiedtobuy",
            "pipeline": "default",
            "amount": 45000.5,
            "closedate": "2025-09-30",
            "owner_id": "41629780",
            "company_id": "1002",
            "contact_id": "1006",
        },
    ],
    "hubspot_deals_update": [
        {"deal_id": "1010", "dealstage": "closedwon"},
        {
            "deal_id": "1010",
            "dealname": "Analytical Engines - renewal",
            "pipeline": "1203581",
            "dealstage": "1203582",
            "amount": 0,
            "closedate": "2026-01-31",
            "owner_id": "41629779",
        },
    ],
    # The sandbox-only cases use the sandbox's seeded ids: companies 1001-1003, contacts 1004-1009, deals 1010-.
    "hubspot_pipelines_list": [{}],
    "hubspot_notes_create": [
        {"body": "Called Ada: wants the annual plan renewed early.", "contact_id": "1004"},
        {
            "body": "Kick-off booked for 3 March.\nBring the pricing sheet.",
            "company_id": "1001",
            "deal_id": "1010",
            "contact_id": "1004",
            "timestamp": "2025-03-14T15:09:26+01:00",
        },
    ],
    "hubspot_owners_list": [
        {},
        {"email": "mary.jackson@switchboard-demo.example.com"},
        {"limit": 1, "after": "41629780"},
    ],
}
ERRORS: dict[int, type[ConnectorError]] = {
    401: ProviderAuthExpired,
    403: ProviderForbidden,
    404: ProviderNotFound,
    429: ProviderRateLimited,
    500: ProviderUnavailable,
}


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_prism({"prism": SPEC}, tmp_path_factory.mktemp("prism")) as urls:
        yield urls["prism"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path_factory.mktemp("hubspot")) as running:
        yield running


class _Watch:
    """aiohttp tracing for the connector's session: each request sent, and the `sl-violations` prism reports."""

    def __init__(self, base: str) -> None:
        self.violations: list[str] = []
        self.sent: list[tuple[str, str, bytearray]] = []  # method, path, body
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._start)
        self.trace.on_request_chunk_sent.append(self._body)
        self.trace.on_request_end.append(self._end)
        self._base = base

    async def _start(self, session: object, context: object, params: aiohttp.TraceRequestStartParams) -> None:
        self.sent.append((params.method, params.url.path, bytearray()))

    async def _body(self, session: object, context: object, params: aiohttp.TraceRequestChunkSentParams) -> None:
        self.sent[-1][2].extend(params.chunk)

    async def _end(self, session: object, context: object, params: aiohttp.TraceRequestEndParams) -> None:
        if found := params.response.headers.get("sl-violations"):
            self.violations.append(f"{params.method} {str(params.url).removeprefix(self._base)}: {found}")


def _client(base: str) -> tuple[HubSpotClient, list[str]]:
    """The connector's real client, plus the `sl-violations` prism reported for any of its requests."""
    watch = _Watch(base)
    client = HubSpotClient(access_token="test-token", api_base=base, timeout=10, trace_configs=[watch.trace])
    return client, watch.violations


def _spec_problems(body: Any, component: str) -> list[str]:
    return SpecSchemas(json.loads(SPEC.read_text()), "urn:spec").problems(body, "components", "schemas", component)


def test_sandbox_only_endpoints_are_really_missing_from_the_spec() -> None:
    # When the spec gains one of these, move its tool to prism: take it out of SANDBOX_ONLY.
    paths = json.loads(SPEC.read_text())["paths"]
    for name, (_, path) in SANDBOX_ONLY.items():
        assert name in TOOLS
        assert path not in paths and path.rstrip("/") not in paths, f"{path} is in the spec now: serve {name} by prism"


@pytest.mark.parametrize("name", PRISM_SERVED)
async def test_tool_request_conforms(prism: str, name: str) -> None:
    tool = TOOLS[name]
    assert CASES.get(name), f"add realistic arguments for {name} to CASES"
    for arguments in CASES[name]:
        client, violations = _client(prism)
        try:
            result = await tool.invoke(client, tool.input_model.model_validate(arguments))
        except ProviderRejected:
            pytest.fail(f"{name}({arguments}) does not conform to HubSpot's spec:\n" + "\n".join(violations))
        finally:
            client.close()
        assert isinstance(result, tool.output_model)
        assert not violations, "\n".join(violations)


@pytest.mark.parametrize("name", sorted(SANDBOX_ONLY))
async def test_sandbox_only_tool_requests_are_accepted(sandbox: Sandbox, name: str) -> None:
    """Not servable by prism (see the module docstring): the same realistic cases, against the sandbox."""
    tool = TOOLS[name]
    method, path = SANDBOX_ONLY[name]
    assert CASES.get(name), f"add realistic arguments for {name} to CASES"
    for arguments in CASES[name]:
        watch = _Watch(sandbox.url)
        client = hubspot_client(sandbox, trace_configs=[watch.trace])
        sent = watch.sent
        try:
            result = await tool.invoke(client, tool.input_model.model_validate(arguments))
        finally:
            client.close()
        assert isinstance(result, tool.output_model)
        expected = path.replace("{objectType}", "deals")
        assert [(m.lower(), p) for m, p, _ in sent] == [(method, expected)]
        if name == "hubspot_notes_create":
            # The objects API takes one input schema for every object type; the spec has it for the others.
            body = json.loads(sent[0][2])
            problems = _spec_problems(body, "SimplePublicObjectInputForCreate")
            assert not problems, "\n".join(problems)
            type_ids = {t["associationTypeId"] for a in body["associations"] for t in a["types"]}
            assert type_ids <= {202, 190, 214}  # note->contact, note->company, note->deal


def test_the_spec_check_catches_a_body_that_breaks_it() -> None:
    assert _spec_problems({"properties": {"hs_note_body": 5}}, "SimplePublicObjectInputForCreate") == [
        "<body>: 'associations' is a required property",
        "properties/hs_note_body: 5 is not of type 'string'",
    ]


@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("name", PRISM_SERVED)
async def test_provider_error_maps_to_connector_error(prism: str, name: str, status: int) -> None:
    tool = TOOLS[name]
    client, violations = _client(prism)
    for api_client in client.api_clients:
        api_client.set_default_header("Prefer", f"code={status}")
    try:
        with pytest.raises(ERRORS[status]) as caught:
            await tool.invoke(client, tool.input_model.model_validate(CASES[name][-1]))
    finally:
        client.close()
    assert not violations, "\n".join(violations)
    assert "test-token" not in caught.value.message
    if status == 429:
        assert isinstance(caught.value, ProviderRateLimited)
        assert caught.value.retry_after is None  # HubSpot, like prism, sends no Retry-After


async def test_prism_refuses_a_request_that_breaks_the_spec(prism: str) -> None:
    # The check above is only as good as prism's refusal: a property value must be a string.
    client, violations = _client(prism)
    try:
        with pytest.raises(ProviderRejected):
            await client.call(
                client.contacts.update, contact_id="51", simple_public_object_input={"properties": {"email": 5}}
            )
    finally:
        client.close()
    assert violations and "properties.email" in violations[0]
