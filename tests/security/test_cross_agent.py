"""One agent against another, and REST against MCP: agent A cannot use agent B's connection, held calls, MCP
session or the admin API; and the same agent sees the same tools and meets the same refusals over REST and
MCP. Every refused tool call is audited and none reaches the provider."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.stack import MCP_HEADERS, Stack, audited, mcp_calls, mcp_tools

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}


@dataclass(frozen=True)
class Pair:
    """`alice` may read contacts on `crm`; `bob` may read contacts on `crm-b`, and write them with approval."""

    alice: str
    bob: str


@pytest.fixture(scope="module")
def pair(stack: Stack) -> Iterator[Pair]:
    hub = stack.hub
    alice, bob = hub.create_agent("xa-alice"), hub.create_agent("xa-bob")
    hub.grant("xa-alice", "crm", "crm.contacts.read")
    hub.grant("xa-bob", "crm-b", "crm.contacts.read")
    hub.grant("xa-bob", "crm-b", "crm.contacts.write", {"approval": "always"})
    yield Pair(alice, bob)


def _api_requests(stack: Stack) -> int:
    return int(stack.hubspot.stats()["api_requests"])


def _refused(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["type"] == kind, body
    return body


async def test_an_agent_cannot_call_through_a_connection_granted_only_to_another(stack: Stack, pair: Pair) -> None:
    hub, before = stack.hub, _api_requests(stack)
    refused_before = audited(hub, agent="xa-alice", tool="hubspot_contacts_search", problem="scope_denied")
    with hub.agent(pair.alice) as alice:
        listed = alice.get("/v1/tools", params={"format": "mcp"}).json()["tools"]
        assert "crm-b" not in str(listed)
        rest = alice.post(
            "/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}, "connection": "crm-b"}
        )
        _refused(rest, 403, "scope_denied")
        body = {"arguments": {"contact_id": "1"}, "connection": "crm-b"}
        got = alice.post("/v1/tools/hubspot_contacts_get/call", json=body)
        _refused(got, 403, "scope_denied")
    (mcp,) = await mcp_calls(hub, pair.alice, [("hubspot_contacts_search", {"query": "ada", "connection": "crm-b"})])
    assert mcp["is_error"] and mcp["type"] == "scope_denied"
    assert _api_requests(stack) == before, "a refused call reached the provider"
    assert audited(hub, agent="xa-alice", tool="hubspot_contacts_search", problem="scope_denied") == refused_before + 2
    assert audited(hub, agent="xa-alice", tool="hubspot_contacts_get", problem="scope_denied") >= 1


def test_an_agent_cannot_see_or_wait_on_another_agents_held_call(stack: Stack, pair: Pair) -> None:
    hub = stack.hub
    with hub.agent(pair.bob) as bob, hub.agent(pair.alice) as alice:
        held = bob.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "held@example.com"}})
        assert held.status_code == 202, held.text
        call_id = held.json()["call_id"]
        for params in ({}, {"wait": 1}):
            _refused(alice.get(f"/v1/calls/{call_id}", params=params), 404, "not_found")
        assert bob.get(f"/v1/calls/{call_id}").status_code == 202
        # Nor can it decide the call: its key opens no admin door.
        _refused(alice.post(f"/admin/api/approvals/{call_id}", json={"approve": True}), 401, "unauthenticated")
        with hub.admin() as admin:
            assert admin.get(f"/admin/api/approvals/{call_id}").json()["status"] == "pending"
            assert admin.post(f"/admin/api/approvals/{call_id}", json={"approve": False}).status_code == 200
        _refused(bob.get(f"/v1/calls/{call_id}"), 403, "approval_denied")
        _refused(alice.get(f"/v1/calls/{call_id}"), 404, "not_found")


def test_an_agent_cannot_use_or_end_another_agents_mcp_session(stack: Stack, pair: Pair) -> None:
    hub = stack.hub
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "hubspot_contacts_search", "arguments": {"query": "ada"}},
    }

    def as_agent(key: str, session_id: str | None = None) -> dict[str, str]:
        session = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"} if session_id else {}
        return {**MCP_HEADERS, "Authorization": f"Bearer {key}", **session}

    with hub.client() as http:
        opened = http.post("/mcp", headers=as_agent(pair.bob), json=_INITIALIZE)
        assert opened.status_code == 200, opened.text
        session_id = opened.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post("/mcp", headers=as_agent(pair.bob, session_id), json=initialized).status_code == 202
        before = _api_requests(stack)
        # To alice, bob's session does not exist: she cannot call in it, listen on it or end it.
        assert http.post("/mcp", headers=as_agent(pair.alice, session_id), json=call).status_code == 404
        assert http.get("/mcp", headers=as_agent(pair.alice, session_id)).status_code == 404
        assert http.delete("/mcp", headers=as_agent(pair.alice, session_id)).status_code == 404
        assert _api_requests(stack) == before
        # Bob's session is untouched.
        own = http.post("/mcp", headers=as_agent(pair.bob, session_id), json=call)
        assert own.status_code == 200 and "ada" in own.text.lower(), own.text
        assert http.delete("/mcp", headers=as_agent(pair.bob, session_id)).status_code == 200


def test_an_agent_key_opens_no_admin_door(stack: Stack, pair: Pair) -> None:
    hub = stack.hub
    with hub.admin() as admin:
        grants_before = admin.get("/admin/api/grants").json()
    bearer = {"Authorization": f"Bearer {pair.alice}"}
    with hub.client() as http:
        for method, path, body in (
            ("GET", "/admin/api/agents", None),
            ("GET", "/admin/api/audit", None),
            ("POST", "/admin/api/grants", {"agent": "xa-alice", "connection": "crm-b", "scope": "crm.contacts.write"}),
            ("POST", "/admin/api/agents", {"name": "xa-mallory"}),
            ("POST", "/admin/api/agents/xa-bob/keys", {}),
            ("DELETE", "/admin/api/connections/crm-b", None),
            ("GET", "/connect/hubspot?name=xa-stolen&scopes=crm.contacts.read", None),
        ):
            answer = http.request(method, path, json=body, headers=bearer)
            _refused(answer, 401, "unauthenticated")
        # Nor as the page's session cookie.
        for method, path in (("GET", "/admin/"), ("POST", "/admin/agents")):
            answer = http.request(method, path, headers={"Cookie": f"sb_admin={pair.alice}"}, data={"name": "xa-m"})
            assert answer.status_code == 401, answer.text
    with hub.admin() as admin:
        assert admin.get("/admin/api/grants").json() == grants_before
        assert admin.get("/admin/api/agents/xa-mallory").status_code == 404


async def test_rest_and_mcp_show_the_same_tools_and_refuse_alike(stack: Stack, pair: Pair) -> None:
    hub = stack.hub
    # (tool, arguments, top-level connection) → the problem both transports must answer.
    cases: list[tuple[str, dict[str, Any], Any, str]] = [
        ("hubspot_contacts_search", {"query": "ada"}, "crm-b", "scope_denied"),
        ("hubspot_contacts_search", {"query": "ada"}, 5, "invalid_arguments"),
        ("hubspot_contacts_search", {"query": "ada"}, {"name": "crm"}, "invalid_arguments"),
        ("hubspot_contacts_search", {"query": "ada", "admin": True}, None, "invalid_arguments"),
        ("hubspot_contacts_search", {"limit": "1; DROP TABLE grants"}, None, "invalid_arguments"),
        ("hubspot_contacts_get", {"contact_id": "1", "contact_ids": ["2", "3"]}, None, "invalid_arguments"),
        ("hubspot_contacts_create", {"email": "eve@example.com"}, None, "scope_denied"),
        ("hubspot_contacts_create", {"email": "eve@example.com"}, "crm-b", "scope_denied"),
        ("slack_messages_post", {"channel": "C0GENERAL1", "text": "hi"}, None, "scope_denied"),
        ("hubspot_contacts_delete", {"contact_id": "1"}, None, "unknown_tool"),
    ]
    before = _api_requests(stack)
    counts_before = {
        (tool, kind): audited(hub, agent="xa-alice", tool=tool, problem=kind) for tool, _, _, kind in cases
    }
    rest_answers = []
    with hub.agent(pair.alice) as alice:
        rest_tools = alice.get("/v1/tools", params={"format": "mcp"}).json()["tools"]
        for tool, arguments, connection, _ in cases:
            body: dict[str, Any] = {"arguments": arguments}
            if connection is not None:
                body["connection"] = connection
            answer = alice.post(f"/v1/tools/{tool}/call", json=body)
            assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
            rest_answers.append(answer.json())
    mcp_cases = [(tool, {**args, **({"connection": c} if c is not None else {})}) for tool, args, c, _ in cases]
    mcp_answers = await mcp_calls(hub, pair.alice, mcp_cases)

    for (tool, _, _, kind), rest, mcp in zip(cases, rest_answers, mcp_answers, strict=True):
        assert rest["type"] == kind, (tool, rest)
        assert mcp.pop("is_error") is True
        assert mcp == rest, f"{tool}: MCP answered {mcp}, REST {rest}"
    assert _api_requests(stack) == before, "a refused call reached the provider"
    expected = Counter((tool, kind) for tool, _, _, kind in cases)
    for (tool, kind), times in expected.items():
        counted = audited(hub, agent="xa-alice", tool=tool, problem=kind)
        assert counted == counts_before[(tool, kind)] + 2 * times, (tool, kind)
    # And the same tools, described alike.
    listed = await mcp_tools(hub, pair.alice)
    assert listed == rest_tools
