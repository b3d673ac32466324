"""Header, path and JSON injection through tool arguments into provider requests. What lands in a URL path is
refused by the tool's schema (422, audited, the provider never asked); what lands in a query string or a JSON
body is encoded, as the bytes the HubSpot sandbox received show: no injected header, no extra parameter, no
path outside the API, no JSON field the agent did not name."""

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.security.stack import Stack, audited

pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)

_CRLF = "1\r\nX-Evil: 1"
_INJECTED_HEADER = re.compile(rb"\r\nX-Evil:", re.IGNORECASE)


@pytest.fixture(scope="module")
def ink(stack: Stack) -> Iterator[str]:
    hub = stack.hub
    key = hub.create_agent("inj-agent")
    for scope in ("crm.contacts.read", "crm.contacts.write", "crm.owners.read"):
        hub.grant("inj-agent", "crm", scope)
    hub.grant("inj-agent", "chat", "messaging.chat.send")
    api_key = "sk_test_" + "I" * 24
    stack.secrets.add(api_key)
    with hub.admin() as admin:
        connected = admin.post(
            "/admin/api/connections",
            json={"provider": "stripe", "name": "inj-pay", "api_key": api_key, "scopes": ["payments.customers.read"]},
        )
    assert connected.status_code == 201, connected.text
    hub.grant("inj-agent", "inj-pay", "payments.customers.read")
    yield key


def test_arguments_that_reach_a_url_path_are_refused_before_the_provider(stack: Stack, ink: str) -> None:
    cases = [
        ("hubspot_contacts_get", {"contact_id": _CRLF}),
        ("hubspot_contacts_get", {"contact_id": "1/../../owners"}),
        ("hubspot_contacts_get", {"contact_id": "../../../crm/v3/owners"}),
        ("hubspot_contacts_get", {"contact_id": "1?archived=true"}),
        ("hubspot_contacts_get", {"contact_id": "1#fragment"}),
        ("hubspot_contacts_get", {"contact_id": "%2e%2e%2f"}),
        ("hubspot_contacts_get", {"contact_id": "1\n"}),
        ("hubspot_contacts_update", {"contact_id": "1 HTTP/1.1\r\nHost: evil", "firstname": "x"}),
        ("slack_messages_post", {"channel": "C0GENERAL1\r\nX-Evil: 1", "text": "hi"}),
        ("slack_messages_post", {"channel": "C0GENERAL1/../../api/admin.users.list", "text": "hi"}),
        ("slack_messages_post", {"channel": "C0GENERAL1&token=x", "text": "hi"}),
        ("stripe_customers_get", {"customer_id": "cus_1/../../v1/charges"}),
        ("stripe_customers_get", {"customer_id": "cus_1\r\nStripe-Account: acct_evil"}),
    ]
    hubspot, slack = stack.hubspot.stats()["api_requests"], stack.slack.stats()["api_requests"]
    tools = {tool for tool, _ in cases}
    before = {tool: audited(stack.hub, agent="inj-agent", tool=tool, problem="invalid_arguments") for tool in tools}
    with stack.hub.agent(ink) as agent:
        for tool, arguments in cases:
            refused = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
            assert refused.status_code == 422, (tool, arguments, refused.text)
            assert refused.json()["type"] == "invalid_arguments"
            assert "\r" not in refused.text.replace("\\r", ""), "the problem echoes raw control characters"
    assert stack.hubspot.stats()["api_requests"] == hubspot and stack.slack.stats()["api_requests"] == slack
    for tool in tools:
        expected = before[tool] + sum(1 for t, _ in cases if t == tool)
        assert audited(stack.hub, agent="inj-agent", tool=tool, problem="invalid_arguments") == expected


def test_arguments_that_reach_a_query_string_are_encoded(stack: Stack, ink: str) -> None:
    sent_before = len(stack.relay.sent())
    values = [_CRLF, "../../../crm/v3/objects/contacts", "1&archived=true&limit=100", "1 HTTP/1.1\r\nHost: evil"]
    with stack.hub.agent(ink) as agent:
        for after in values:
            listed = agent.post("/v1/tools/hubspot_owners_list/call", json={"arguments": {"after": after, "limit": 5}})
            assert listed.status_code in (200, 422), listed.text
        # An email may hold `&` and `=`: it must stay one parameter.
        email = "x&archived=true@example.com"
        found = agent.post("/v1/tools/hubspot_owners_list/call", json={"arguments": {"email": email}})
        assert found.status_code == 200, found.text
    wire = stack.relay.sent()[sent_before:]
    assert not _INJECTED_HEADER.search(wire) and b"Host: evil" not in wire
    owners = [line for line in stack.relay.request_lines() if "/owners" in line][-len(values) - 1 :]
    assert len(owners) == len(values) + 1, owners
    for line in owners:
        method, target = line.split(" ", 1)
        parts = urlsplit(target)
        assert method == "GET" and parts.path in ("/crm/v3/owners", "/crm/v3/owners/"), line
        query = parse_qs(parts.query)
        assert [v.lower() for v in query["archived"]] == ["false"], line  # never the agent's `archived=true`
    sent_values = [parse_qs(urlsplit(line.split(" ", 1)[1]).query).get("after", [None])[0] for line in owners[:-1]]
    assert sent_values == values
    assert parse_qs(urlsplit(owners[-1].split(" ", 1)[1]).query)["email"] == [email]


def test_arguments_inside_a_json_body_cannot_add_fields(stack: Stack, ink: str) -> None:
    forged = 'Eve", "lastname": "Injected", "hs_lead_status": "OWNED'
    with stack.hub.agent(ink) as agent:
        created = agent.post(
            "/v1/tools/hubspot_contacts_create/call",
            json={"arguments": {"email": "eve.inject@example.com", "firstname": forged}},
        )
        assert created.status_code == 200, created.text
        contact_id = created.json()["result"]["id"]
        read = agent.post("/v1/tools/hubspot_contacts_get/call", json={"arguments": {"contact_id": contact_id}})
        assert read.status_code == 200, read.text
        assert read.json()["result"]["firstname"] == forged
        assert read.json()["result"].get("lastname") in (None, "")
        # A search query shaped like JSON is a search query.
        query = '"}, "limit": 100, "filterGroups": [{"filters": []}], "x": {"'
        searched = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": query}})
        assert searched.status_code == 200 and searched.json()["result"]["contacts"] == [], searched.text
    assert b'"limit": 100' not in stack.relay.sent()
