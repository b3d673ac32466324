"""MCP over streamable HTTP with real clients against a running hub (and HubSpot sandbox), on SQLite and
PostgreSQL: the official Python SDK client and the MCP Inspector CLI, each seeing exactly what the REST API
sees for the same agent key."""

import json
import os
import re
import subprocess
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client.session import ClientSession

from tests.harness import INSPECTOR_BIN, INSPECTOR_CLI, ROOT, Hub, mcp_session

READ_TOOLS = ["hubspot_contacts_get", "hubspot_contacts_search"]
WRITE_TOOLS = ["hubspot_contacts_create", "hubspot_contacts_update"]
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "plain-httpx", "version": "0"},
    },
}
_MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _rest_tools(hub: Hub, key: str, fmt: str = "mcp") -> list[dict[str, Any]]:
    with hub.agent(key) as agent:
        listed = agent.get("/v1/tools", params={"format": fmt})
    assert listed.status_code == 200, listed.text
    tools: list[dict[str, Any]] = listed.json()["tools"]
    return tools


async def _listed(session: ClientSession) -> list[dict[str, Any]]:
    result = await session.list_tools()
    return [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in result.tools]


def _call_result(result: types.CallToolResult | Any) -> types.CallToolResult:
    assert isinstance(result, types.CallToolResult), result
    return result


def _problem(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, result
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    problem: dict[str, Any] = json.loads(content.text)
    return problem


async def test_python_client_lists_and_calls_exactly_what_rest_allows(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm-a", "crm.contacts.read,crm.contacts.write").status_code == 303
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm-a", "crm.contacts.read")
    with anyio.fail_after(120):
        async with mcp_session(hub, key) as session:
            # tools/list is GET /v1/tools?format=mcp: same names, descriptions and schemas.
            assert await _listed(session) == _rest_tools(hub, key)
            assert [t["name"] for t in _rest_tools(hub, key)] == READ_TOOLS

            # A grant added is in the very next list, on the same MCP session; a grant revoked is gone from it.
            write_grant = hub.grant("support-bot", "crm-a", "crm.contacts.write")
            listed = await _listed(session)
            assert sorted(t["name"] for t in listed) == sorted(READ_TOOLS + WRITE_TOOLS)
            assert listed == _rest_tools(hub, key)
            with hub.admin() as admin:
                assert admin.delete(f"/admin/api/grants/{write_grant}").status_code == 204
            listed = await _listed(session)
            assert [t["name"] for t in listed] == READ_TOOLS and listed == _rest_tools(hub, key)

            # tools/call answers what POST /v1/tools/{tool}/call answers: {call_id, result}, also as text.
            called = _call_result(await session.call_tool("hubspot_contacts_search", {"query": "ada"}))
            assert not called.is_error
            body = called.structured_content
            assert body is not None and set(body) == {"call_id", "result"}
            (content,) = called.content
            assert isinstance(content, types.TextContent) and json.loads(content.text) == body
            with hub.agent(key) as agent:
                rest = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
            assert rest.status_code == 200, rest.text
            assert body["result"] == rest.json()["result"]
            assert any(c["email"].startswith("ada") for c in body["result"]["contacts"])
            assert body["call_id"] != rest.json()["call_id"]

            # A call the grants do not allow is an error result carrying the same problem as REST's 403.
            denied = _problem(_call_result(await session.call_tool("hubspot_contacts_create", {"email": "e@x.io"})))
            assert denied["type"] == "scope_denied" and denied["status"] == 403
            bad = _problem(_call_result(await session.call_tool("hubspot_contacts_get", {"contact_id": "x; drop"})))
            assert bad["type"] == "invalid_arguments"
            unknown = _problem(_call_result(await session.call_tool("nope", {})))
            assert unknown["type"] == "unknown_tool"

    # Every MCP call was audited like a REST call.
    with hub.admin() as admin:
        audit = admin.get("/admin/api/audit", params={"limit": 20}).json()
    assert [(a["tool"], a["problem"]) for a in audit][:5] == [
        ("nope", "unknown_tool"),
        ("hubspot_contacts_get", "invalid_arguments"),
        ("hubspot_contacts_create", "scope_denied"),
        ("hubspot_contacts_search", None),
        ("hubspot_contacts_search", None),
    ]


def test_mcp_without_a_valid_key_is_a_401_problem(hub: Hub) -> None:
    key = hub.create_agent("support-bot")
    revoked = hub.create_agent("old-bot")
    with hub.admin() as admin:
        assert admin.delete("/admin/api/agents/old-bot").status_code == 204
    cases = {
        "no key": {},
        "bad key": {"Authorization": "Bearer sbk_" + "A" * 43},
        "not bearer": {"Authorization": f"Basic {key}"},
        "disabled agent": {"Authorization": f"Bearer {revoked}"},
    }
    with httpx.Client(base_url=hub.url, timeout=30) as http:
        for case, headers in cases.items():
            for method in ("POST", "GET", "DELETE"):
                answer = http.request(
                    method, "/mcp", headers={**_MCP_HEADERS, **headers}, json=_INITIALIZE if method == "POST" else None
                )
                assert answer.status_code == 401, (case, method, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json"), case
                assert answer.json()["type"] == "unauthenticated", case
                assert answer.headers.get("www-authenticate", "").lower().startswith("bearer"), case
        # The same request with the key is served.
        ok = http.post("/mcp", headers={**_MCP_HEADERS, "Authorization": f"Bearer {key}"}, json=_INITIALIZE)
        assert ok.status_code == 200, ok.text
        session_id = ok.headers.get("mcp-session-id")
        if session_id:
            closed = http.delete("/mcp", headers={"Authorization": f"Bearer {key}", "mcp-session-id": session_id})
            assert closed.status_code in (200, 204), closed.text


def test_an_mcp_session_belongs_to_the_agent_that_opened_it(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read").status_code == 303
    owner, other = hub.create_agent("support-bot"), hub.create_agent("sales-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read")
    with hub.admin() as admin:
        second_key = admin.post("/admin/api/agents/support-bot/keys", json={}).json()["key"]
    hub.secrets.add(second_key)
    list_tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    def in_session(key: str, session_id: str) -> dict[str, str]:
        return {**_MCP_HEADERS, "Authorization": f"Bearer {key}", "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-06-18"}  # fmt: skip

    with httpx.Client(base_url=hub.url, timeout=30) as http:
        opened = http.post("/mcp", headers={**_MCP_HEADERS, "Authorization": f"Bearer {owner}"}, json=_INITIALIZE)
        assert opened.status_code == 200, opened.text
        session_id = opened.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post("/mcp", headers=in_session(owner, session_id), json=initialized).status_code == 202

        # Another agent holding the session id can neither use nor end it: to it, the session does not exist.
        assert http.post("/mcp", headers=in_session(other, session_id), json=list_tools).status_code == 404
        assert http.delete("/mcp", headers=in_session(other, session_id)).status_code == 404
        # The owner, with any of its keys, still can.
        for key in (owner, second_key):
            listed = http.post("/mcp", headers=in_session(key, session_id), json=list_tools)
            assert listed.status_code == 200 and "hubspot_contacts_search" in listed.text, listed.text
        assert http.delete("/mcp", headers=in_session(owner, session_id)).status_code == 200


async def test_two_connections_make_connection_a_required_enum_argument(hub: Hub) -> None:
    for name in ("crm-a", "crm-b"):
        assert hub.connect("hubspot", name, "crm.contacts.read").status_code == 303
    key = hub.create_agent("support-bot")
    for name in ("crm-a", "crm-b"):
        hub.grant("support-bot", name, "crm.contacts.read")

    with anyio.fail_after(120):
        async with mcp_session(hub, key) as session:
            listed = await _listed(session)
            assert listed == _rest_tools(hub, key)
            for tool in listed:
                schema = tool["inputSchema"]
                assert schema["properties"]["connection"]["enum"] == ["crm-a", "crm-b"], tool["name"]
                assert "connection" in schema["required"], tool["name"]

            missing = _problem(_call_result(await session.call_tool("hubspot_contacts_search", {"query": "ada"})))
            assert missing["type"] == "invalid_arguments" and "connection" in missing["detail"]
            other = _problem(_call_result(await session.call_tool("hubspot_contacts_search", {"connection": "crm-c"})))
            assert other["type"] == "scope_denied"
            for name in ("crm-a", "crm-b"):
                called = _call_result(
                    await session.call_tool("hubspot_contacts_search", {"query": "ada", "connection": name})
                )
                assert not called.is_error, called
                assert called.structured_content and called.structured_content["result"]["contacts"]

    with hub.agent(key) as agent:
        missing_rest = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert missing_rest.status_code == 422 and missing_rest.json()["type"] == "invalid_arguments"
        chosen = agent.post(
            "/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}, "connection": "crm-b"}
        )
        assert chosen.status_code == 200, chosen.text
    with hub.admin() as admin:
        audit = admin.get("/admin/api/audit", params={"limit": 2}).json()
    assert [a["connection"] for a in audit] == ["crm-b", None]


# --- The MCP Inspector CLI, as a user runs it ----------------------------------------------------------------


def _inspector(hub: Hub, key: str | None, *method: str) -> tuple[int, str, str]:
    """Run the Inspector CLI as its README shows; (exit code, stdout, stderr).

    `mcp-inspector --cli <hub>/mcp --transport http --stored-auth-only --header "Authorization: Bearer …"
    --method …`, with
    Node 22 first on PATH, as a new user following the spec README would.
    """
    # --stored-auth-only: on a 401 fail at once instead of starting an interactive OAuth login.
    args = [str(INSPECTOR_CLI), "--cli", f"{hub.url}/mcp", "--transport", "http", "--stored-auth-only"]
    if key is not None:
        args += ["--header", f"Authorization: Bearer {key}"]
    env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}
    env["PATH"] = f"{INSPECTOR_BIN}:{env.get('PATH', '')}"
    env["MCP_CATALOG_PATH"] = str(hub.data_dir / "inspector-catalog.json")
    # The CLI is a wrapper that spawns a second node process: run both in their own process group, so a
    # time-out kills the pair.
    proc = subprocess.Popen(
        [*args, *method], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    return proc.returncode, out.decode(), err.decode()


def _json_output(out: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(out[out.index("{") :])
    return body


@pytest.mark.skipif(
    not INSPECTOR_CLI.exists(),
    reason="MCP Inspector CLI missing: npm install --prefix .tools/inspector node@22 @modelcontextprotocol/inspector@2",
)
def test_mcp_inspector_cli_lists_and_calls_the_granted_tools(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read").status_code == 303
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read")

    # Without a key the CLI fails at once with the hub's problem, rather than hanging or prompting.
    code, out, err = _inspector(hub, None, "--method", "tools/list")
    assert code != 0, out
    assert re.search(r"401|unauthenticated", out + err), out + err

    code, out, err = _inspector(hub, key, "--method", "tools/list")
    assert code == 0, out + err
    listed = _json_output(out)["tools"]
    assert [t["name"] for t in listed] == READ_TOOLS
    assert [{k: t[k] for k in ("name", "description", "inputSchema")} for t in listed] == _rest_tools(hub, key)

    code, out, err = _inspector(
        hub, key, "--method", "tools/call", "--tool-name", "hubspot_contacts_search", "--tool-arg", "query=ada"
    )
    assert code == 0, out + err
    called = _json_output(out)
    assert not called.get("isError"), called
    body = called["structuredContent"]
    assert set(body) == {"call_id", "result"}
    assert json.loads(called["content"][0]["text"]) == body
    assert any(c["email"].startswith("ada") for c in body["result"]["contacts"])

    # An ungranted tool is not even listed, so the Inspector refuses to call it.
    code, out, err = _inspector(
        hub, key, "--method", "tools/call", "--tool-name", "hubspot_contacts_create", "--tool-arg", "email=e@x.io"
    )
    assert code != 0 and "tool_not_found" in out + err, out + err
