"""Grant constraints enforced by the hub over REST and MCP: limits clamped, labelled values masked, typos refused
when granting, calls needing approval held without reaching the provider, and explain showing every rule."""

import asyncio

from tests.harness import Hub, Sandbox, inside_one_minute_window, mcp_session


def _grant(hub: Hub, constraints: dict[str, object]) -> None:
    hub.grant("bot", "crm", "crm.contacts.read", constraints)


async def _mcp_search(hub: Hub, key: str) -> dict[str, object]:
    async with mcp_session(hub, key) as session:
        called = await session.call_tool("hubspot_contacts_search", {"limit": 50})
        return called.structured_content or {}


def test_constraints_shape_calls_and_results(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    with hub.admin() as admin:
        typo = admin.post(
            "/admin/api/grants",
            json={"agent": "bot", "connection": "crm", "scope": "crm.contacts.read", "constraints": {"max_resluts": 2}},
        )
        assert typo.status_code == 422 and "max_resluts" in typo.json()["detail"]
    _grant(hub, {"max_results": 2, "redact": ["pii.email", "pii.phone"]})

    with hub.agent(key) as agent:
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 50}}).json()
        contacts = found["result"]["contacts"]
        assert len(contacts) == 2 and found["notes"]
        for contact in contacts:
            assert "@" in contact["email"] and "***" in contact["email"]
            assert contact["email"].split("@")[1].endswith("example.com")  # the domain stays, to tell records apart
        over_mcp = asyncio.run(_mcp_search(hub, key))
        # MCP answers from the same pipeline: the same clamp, the same masks.
        assert over_mcp["result"] == found["result"] and over_mcp["notes"] == found["notes"]

        with hub.admin() as admin:
            explained = admin.post(
                "/admin/api/explain",
                json={"agent": "bot", "tool": "hubspot_contacts_search", "arguments": {"limit": 50}},
            ).json()
        assert explained["outcome"] == "allow" and explained["changes"] == {"limit": 2}
        assert {r["rule"] for r in explained["rules"]} >= {"scope", "max_results"}
        assert explained["results"]["redact"] == ["pii.email", "pii.phone"]

        # A grant asking approval: the call is held, and does not reach HubSpot until a human approves.
        _grant(hub, {"approval": "always"})
        before = hubspot.stats()["api_requests"]
        pending = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}})
        assert pending.status_code == 202 and pending.json()["status"] == "pending_approval"
        assert hubspot.stats()["api_requests"] == before


def test_rate_limits_count_every_call_of_the_grant(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    _grant(hub, {"rate": {"per_minute": 2}})
    inside_one_minute_window()
    with hub.agent(key) as agent:
        answers = [agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}}) for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        limited = answers[2]
        assert limited.status_code == 429 and limited.json()["type"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        before = hubspot.stats()["api_requests"]
        assert (
            agent.post("/v1/tools/hubspot_contacts_get/call", json={"arguments": {"contact_id": "1"}}).status_code
            == 429
        )
        assert hubspot.stats()["api_requests"] == before  # refused before the provider
