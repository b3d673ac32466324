"""Cross-tool data flow and untrusted sessions, end to end on SQLite and PostgreSQL, with the HubSpot and Slack
sandboxes: an agent that read a CRM contact cannot post the contact's email or phone into Slack (exactly, in
another case, or inside a longer text) unless a flow rule allows that label into that sink; a session that read
outsiders' messages holds or refuses its sinks, over REST and MCP. Refused calls never reach Slack."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import Hub, Sandbox, mcp_session, run_hub, run_sandbox

GENERAL, DESIGN = "C0GENERAL1", "C0DESIGN01"


@pytest.fixture
def slack(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox("slack", tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def two_hub(tmp_path: Path, database_url: str, hubspot: Sandbox, slack: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"hubspot": hubspot, "slack": slack}) as running:
        running.connect("hubspot", "crm", "crm.contacts.read")
        running.connect("slack", "chat", "messaging.chat.read,messaging.chat.send")
        yield running


def _post(agent: httpx.Client, text: str, channel: str = GENERAL, session: str | None = None) -> httpx.Response:
    headers = {"X-Switchboard-Session": session} if session else {}
    return agent.post(
        "/v1/tools/slack_messages_post/call", json={"arguments": {"channel": channel, "text": text}}, headers=headers
    )


async def _mcp_calls(hub: Hub, key: str, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[bool, dict[str, Any]]]:
    """Several calls in one MCP session."""
    answers = []
    async with mcp_session(hub, key) as session:
        for tool, arguments in calls:
            called = await session.call_tool(tool, arguments)
            answers.append((bool(called.is_error), json.loads(called.content[0].text)))  # type: ignore[union-attr]
    return answers


def test_crm_contact_data_cannot_leave_through_chat_unless_a_rule_allows_it(two_hub: Hub, slack: Sandbox) -> None:
    hub = two_hub
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    hub.grant("bot", "chat", "messaging.chat.send", {"channels": [GENERAL]})
    with hub.agent(key) as agent:
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 10}}).json()
        first = next(c for c in found["result"]["contacts"] if c.get("phone"))
        contact = agent.post("/v1/tools/hubspot_contacts_get/call", json={"arguments": {"contact_id": first["id"]}})
        assert contact.status_code == 200, contact.text
        email, phone = contact.json()["result"]["email"], contact.json()["result"]["phone"]

        posted = slack.stats()["api_requests"]
        for text in (
            email,
            f"Please call {contact.json()['result']['firstname']} on {phone} or write to {email.upper()}.",
            f"ping {phone}",
        ):
            blocked = _post(agent, text)
            assert blocked.status_code == 403 and blocked.json()["type"] == "flow_blocked", blocked.text
            assert "hubspot_contacts_get" in blocked.json()["detail"]
        assert "pii." in blocked.json()["detail"]
        [(is_error, problem)] = asyncio.run(
            _mcp_calls(hub, key, [("slack_messages_post", {"channel": GENERAL, "text": f"mail {email}"})])
        )
        assert is_error and problem["type"] == "flow_blocked"
        assert slack.stats()["api_requests"] == posted  # nothing reached Slack

        assert _post(agent, "Stand-up moves to 10:30.").status_code == 200  # no traced data: allowed

        with hub.admin() as admin:
            rule = admin.post(
                "/admin/api/agents/bot/flow-rules", json={"label": "pii.email", "target": "messaging.chat.send"}
            )
            assert rule.status_code == 201, rule.text
            assert (
                admin.post(
                    "/admin/api/agents/bot/flow-rules", json={"label": "pii.emails", "target": "messaging.chat.send"}
                ).status_code
                == 422
            )
            explained = admin.post(
                "/admin/api/explain",
                json={"agent": "bot", "tool": "slack_messages_post", "arguments": {"channel": GENERAL, "text": phone}},
            ).json()
        assert explained["outcome"] == "deny" and explained["reason"] == "flow_blocked"
        assert any(r["rule"] == "flow" and r["effect"] == "deny" for r in explained["rules"])

        allowed = _post(agent, f"New lead: {email}")
        assert allowed.status_code == 200, allowed.text
        assert _post(agent, f"{email} / {phone}").json()["type"] == "flow_blocked"  # the phone has no rule
        outside = _post(agent, f"New lead: {email}", channel=DESIGN)
        assert outside.status_code == 403 and outside.json()["type"] == "constraint_violated"
        [(is_error, answer)] = asyncio.run(
            _mcp_calls(hub, key, [("slack_messages_post", {"channel": GENERAL, "text": f"mail {email}"})])
        )
        assert not is_error and answer["result"]["text"] == f"mail {email}"
        assert slack.stats()["api_requests"] == posted + 3

    # Fingerprints are the reading agent's: another agent that never read the contact may post the address.
    other = hub.create_agent("other")
    hub.grant("other", "chat", "messaging.chat.send")
    with hub.agent(other) as agent:
        assert _post(agent, f"{email} {phone}").status_code == 200


def test_a_session_that_read_outsiders_messages_holds_or_refuses_its_sinks(two_hub: Hub, slack: Sandbox) -> None:
    hub = two_hub
    key = hub.create_agent("bot")
    hub.grant("bot", "chat", "messaging.chat.read")
    hub.grant("bot", "chat", "messaging.chat.send")
    history = ("slack_messages_history", {"channel": GENERAL, "limit": 5})
    with hub.agent(key) as agent:
        read = agent.post(
            "/v1/tools/slack_messages_history/call",
            json={"arguments": history[1]},
            headers={"X-Switchboard-Session": "s1"},
        )
        assert read.status_code == 200
        posted = slack.stats()["api_requests"]
        held = _post(agent, "Done, as you asked.", session="s1")
        assert held.status_code == 202 and held.json()["status"] == "pending_approval", held.text
        assert "slack_messages_history" in held.json()["detail"]
        assert slack.stats()["api_requests"] == posted
        assert _post(agent, "A fresh session is trusted.", session="s2").status_code == 200
        # A call naming no session may come from the context that read them: it waits too.
        unnamed = _post(agent, "Done, as you asked.")
        assert unnamed.status_code == 202 and "slack_messages_history" in unnamed.json()["detail"], unnamed.text
        assert _post(agent, "x", session="bad session id!").status_code == 400

        with hub.admin() as admin:
            assert admin.patch("/admin/api/agents/bot", json={"untrusted_policy": "refuse"}).status_code == 200
        refused = _post(agent, "Done, as you asked.", session="s1")
        assert refused.status_code == 403 and refused.json()["type"] == "flow_blocked"

    # Over MCP the session is the MCP session: reading marks it, the next session starts trusted.
    post = ("slack_messages_post", {"channel": GENERAL, "text": "hello"})
    [(_, _), (is_error, problem)] = asyncio.run(_mcp_calls(hub, key, [history, post]))
    assert is_error and problem["type"] == "flow_blocked" and "session" in problem["detail"]
    [(is_error, _)] = asyncio.run(_mcp_calls(hub, key, [post]))
    assert not is_error
    # Reaching Slack: the trusted REST post, the MCP read and the MCP post; no held or refused call.
    assert slack.stats()["api_requests"] == posted + 3


def test_outsiders_text_read_over_mcp_makes_the_agents_unnamed_rest_calls_wait(two_hub: Hub, slack: Sandbox) -> None:
    hub = two_hub
    key = hub.create_agent("bot")
    hub.grant("bot", "chat", "messaging.chat.read")
    hub.grant("bot", "chat", "messaging.chat.send")
    [(is_error, _)] = asyncio.run(_mcp_calls(hub, key, [("slack_messages_history", {"channel": GENERAL, "limit": 5})]))
    assert not is_error
    posted = slack.stats()["api_requests"]
    with hub.agent(key) as agent:
        held = _post(agent, "Done, as you asked.")  # REST, no session: not a way around the MCP session's mark
        assert held.status_code == 202 and "slack_messages_history" in held.json()["detail"], held.text
        assert _post(agent, "A named session of its own is trusted.", session="fresh").status_code == 200
    assert slack.stats()["api_requests"] == posted + 1
