"""The first working slice end to end, on SQLite and PostgreSQL, with the hub and a HubSpot sandbox as real
processes on loopback: connect over OAuth, two agents, one grant, REST and MCP, denials that never reach the
provider, a token expired at the provider and 40 concurrent calls sharing one refresh, revocation, the
audit chain, and no secret in plaintext anywhere."""

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.harness import Hub, Sandbox, mcp_session
from tests.security.leaks import no_secret_anywhere

READ_TOOLS = ["hubspot_contacts_get", "hubspot_contacts_search"]


def _api_requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["api_requests"])


async def _mcp_session_calls(hub: Hub, key: str) -> tuple[list[str], dict[str, object], bool]:
    async with mcp_session(hub, key) as session:
        listed = await session.list_tools()
        ok = await session.call_tool("hubspot_contacts_search", {"query": "ada"})
        denied = await session.call_tool("hubspot_contacts_create", {"email": "eve@example.com"})
        return [t.name for t in listed.tools], ok.structured_content or {}, bool(denied.is_error)


def test_connect_grant_call_refresh_revoke_audit(hub: Hub, hubspot: Sandbox) -> None:
    # Connect: the authorize redirect carries a strong single-use state, PKCE S256 and only the scope needed.
    with hub.admin() as admin:
        start = admin.get("/connect/hubspot", params={"name": "crm", "scopes": "crm.contacts.read"})
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["scope"] == ["crm.objects.contacts.read"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 22  # 128 bits in url-safe base64
    done = hub.connect("hubspot", "crm", "crm.contacts.read")
    assert done.status_code == 303
    with hub.admin() as admin:
        (connection,) = admin.get("/admin/api/connections").json()
    assert connection["status"] == "active"
    assert connection["granted_scopes"] == ["crm.objects.contacts.read"]

    # Two agents; only the first is granted crm.contacts.read.
    reader_key, other_key = hub.create_agent("support-bot"), hub.create_agent("sales-bot")
    grant_id = hub.grant("support-bot", "crm", "crm.contacts.read")
    with hub.agent(reader_key) as reader, hub.agent(other_key) as other:
        _walk(hub, hubspot, reader, other, reader_key, grant_id)


def _walk(
    hub: Hub, hubspot: Sandbox, reader: httpx.Client, other: httpx.Client, reader_key: str, grant_id: int
) -> None:
    listed = reader.get("/v1/tools").json()["tools"]
    assert [t["name"] for t in listed] == READ_TOOLS
    anthropic = reader.get("/v1/tools", params={"format": "anthropic"}).json()["tools"]
    assert set(anthropic[0]) == {"name", "description", "input_schema"}
    openai = reader.get("/v1/tools", params={"format": "openai"}).json()["tools"]
    assert openai[0]["type"] == "function" and "parameters" in openai[0]["function"]

    found = reader.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
    assert found.status_code == 200, found.text
    assert any(c["email"].startswith("ada") for c in found.json()["result"]["contacts"])

    # MCP sees exactly what REST sees, for the same key.
    mcp_tools, mcp_result, mcp_denied = asyncio.run(_mcp_session_calls(hub, reader_key))
    assert sorted(mcp_tools) == READ_TOOLS
    assert mcp_result["result"]["contacts"]  # type: ignore[index]
    assert mcp_denied

    # Denials happen before any request reaches the provider.
    before = _api_requests(hubspot)
    create = reader.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "eve@example.com"}})
    assert create.status_code == 403 and create.json()["type"] == "scope_denied"
    assert create.headers["content-type"].startswith("application/problem+json")
    assert other.get("/v1/tools").json()["tools"] == []
    for tool in READ_TOOLS:
        denied = other.post(f"/v1/tools/{tool}/call", json={"arguments": {"contact_id": "1"}})
        assert denied.status_code == 403 and denied.json()["type"] == "scope_denied"
    bad_args = reader.post("/v1/tools/hubspot_contacts_get/call", json={"arguments": {"contact_id": "x; drop"}})
    assert bad_args.status_code == 422 and bad_args.json()["type"] == "invalid_arguments"
    assert reader.post("/v1/tools/nope/call", json={}).json()["type"] == "unknown_tool"
    assert reader.post("/v1/tools/hubspot_contacts_get/call", content=b"{oops").status_code == 400
    assert httpx.get(f"{hub.url}/v1/tools").status_code == 401
    assert _api_requests(hubspot) == before

    # The provider expires the token; 40 concurrent calls all succeed with exactly one refresh.
    hubspot.control("expire-tokens")
    refreshes = hubspot.stats()["token_requests"].get("refresh_token", 0)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=hub.url, headers={"Authorization": f"Bearer {reader_key}"}, timeout=60
        ) as c:
            answers = await asyncio.gather(
                *(c.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 3}}) for _ in range(40))
            )
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 40
    assert hubspot.stats()["token_requests"]["refresh_token"] == refreshes + 1

    # Revoking the grant is felt on the very next call.
    with hub.admin() as admin:
        assert admin.delete(f"/admin/api/grants/{grant_id}").status_code == 204
    after = reader.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}})
    assert after.status_code == 403 and after.json()["type"] == "scope_denied"
    assert reader.get("/v1/tools").json()["tools"] == []

    # Every call was audited, and the chain verifies.
    verified = hub.cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    exported = hub.cli("audit", "export").stdout.splitlines()
    assert len(exported) >= 40 + 8

    # No token, refresh token, client secret or key in plaintext: database files, WAL, logs, audit export,
    # metrics, error bodies (tests/security/test_secrets.py walks many more paths).
    assert no_secret_anywhere(hub, set(hubspot.issued_tokens()), audit_export="\n".join(exported)) > 5
