"""Slack end to end, on SQLite and PostgreSQL, with the hub and a Slack sandbox (token rotation on) as real
processes on loopback: connect over OAuth v2 asking for exactly the Slack scopes the hub scopes need, then
every Slack tool over the agent API, a rotated token refreshed once, rate limits retried for reads and not for
writes, Slack's errors as the hub's problem types (a scope Slack did not grant named as such), and no Slack
token in the hub's log. One test per database: starting the hub is most of its time."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from tests.harness import Hub, Sandbox, run_hub, run_sandbox

READ_SCOPES = "channels:history,channels:read,groups:history,groups:read,users:read,users:read.email"
SLACK_TOOLS = [
    "slack_channels_list",
    "slack_messages_history",
    "slack_messages_post",
    "slack_thread_replies",
    "slack_thread_reply",
    "slack_users_lookup",
]


@pytest.fixture
def slack(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox("slack", tmp_path, "--rotate-refresh-tokens") as sandbox:
        yield sandbox


@pytest.fixture
def slack_hub(tmp_path: Path, database_url: str, slack: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"slack": slack}) as running:
        yield running


def _throttle(sandbox: Sandbox, count: int, retry_after: int) -> None:
    httpx.post(f"{sandbox.url}/_control/throttle", json={"count": count, "retry_after": retry_after}).raise_for_status()


def _call(agent: httpx.Client, tool: str, **arguments: object) -> httpx.Response:
    # Each call its own session: reading other people's messages would otherwise hold the posts that follow
    # (tests/test_data_flow.py covers that rule).
    session = {"X-Switchboard-Session": str(uuid.uuid4())}
    return agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments}, headers=session)


def _result(agent: httpx.Client, tool: str, **arguments: object) -> dict[str, object]:
    answer = _call(agent, tool, **arguments)
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()["result"]
    return result


def test_connect_then_every_slack_tool_over_the_agent_api(slack_hub: Hub, slack: Sandbox) -> None:
    hub = slack_hub
    with hub.admin() as admin:
        start = admin.get(
            "/connect/slack", params={"name": "team-chat", "scopes": "messaging.chat.read,messaging.chat.send"}
        )
    assert start.status_code == 302, start.text
    location = urlsplit(start.headers["location"])
    assert location.path == "/oauth/v2/authorize"
    query = parse_qs(location.query)
    # Exactly the Slack scopes the two hub scopes need, sorted, comma-separated as Slack's v2 authorize wants.
    assert query["scope"] == [
        "channels:history,channels:read,chat:write,groups:history,groups:read,users:read,users:read.email"
    ]
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [slack.client_id]
    assert hub.connect("slack", "team-chat", "messaging.chat.read,messaging.chat.send").status_code == 303
    with hub.admin() as admin:
        (connection,) = admin.get("/admin/api/connections").json()
    assert (connection["status"], connection["account"]) == ("active", "Switchboard Sandbox")
    assert connection["granted_scopes"] == sorted([*READ_SCOPES.split(","), "chat:write"])
    assert connection["expires_at"]  # token rotation: the bot token expires and is refreshed

    key = hub.create_agent("chat-bot")
    hub.grant("chat-bot", "team-chat", "messaging.chat.read")
    hub.grant("chat-bot", "team-chat", "messaging.chat.send")
    with hub.agent(key) as agent:
        listed = agent.get("/v1/tools").json()["tools"]
        assert sorted(t["name"] for t in listed) == SLACK_TOOLS
        _walk(agent, slack)
        _errors(agent, slack)
    _narrow_install(hub)

    log = (hub.data_dir.parent / "hub.log").read_text()
    issued = slack.issued_tokens()
    assert len(issued) >= 4  # access + refresh at connect, and again after the refresh
    assert not [t for t in issued if t in log], "a Slack token reached the hub's log"


def _walk(agent: httpx.Client, slack: Sandbox) -> None:
    channels = _result(agent, "slack_channels_list")["channels"]
    assert isinstance(channels, list)
    general = next(c for c in channels if c["name"] == "general")
    assert general["is_member"] is True

    history = _result(agent, "slack_messages_history", channel=general["id"], limit=10)
    messages = history["messages"]
    assert isinstance(messages, list) and messages
    parent = next(m for m in messages if m.get("reply_count"))
    thread = _result(agent, "slack_thread_replies", channel=general["id"], thread_ts=parent["ts"])
    assert isinstance(thread["messages"], list) and len(thread["messages"]) == 1 + parent["reply_count"]

    who = _result(agent, "slack_users_lookup", user_id=parent["user"])
    assert who["email"] and who["real_name"]
    by_email = _result(agent, "slack_users_lookup", email=who["email"])
    assert by_email["id"] == parent["user"]

    posted = _result(agent, "slack_messages_post", channel=general["id"], text="Stand-up notes are in the doc.")
    reply = _result(agent, "slack_thread_reply", channel=general["id"], thread_ts=posted["ts"], text="Thanks!")
    assert reply["thread_ts"] == posted["ts"]
    latest = _result(agent, "slack_messages_history", channel=general["id"], limit=1)["messages"]
    assert isinstance(latest, list) and latest[0]["ts"] == posted["ts"] and latest[0]["reply_count"] == 1

    # Slack expires the rotated token: the next call refreshes once and succeeds.
    refreshes = slack.stats()["token_requests"].get("refresh_token", 0)
    slack.control("expire-tokens")
    assert _result(agent, "slack_channels_list", limit=1)["channels"]
    assert slack.stats()["token_requests"]["refresh_token"] == refreshes + 1


def _errors(agent: httpx.Client, slack: Sandbox) -> None:
    # A rate-limited read is retried within the hub's budget; a rate-limited post is not (it could post twice).
    _throttle(slack, 2, 1)
    before = slack.stats()["api_requests"]
    assert _call(agent, "slack_channels_list", limit=1).status_code == 200
    assert slack.stats()["api_requests"] == before + 3
    _throttle(slack, 1, 9)
    before = slack.stats()["api_requests"]
    limited = _call(agent, "slack_messages_post", channel="C0GENERAL1", text="only once")
    assert limited.status_code == 429 and limited.json()["type"] == "rate_limited"
    assert limited.headers["retry-after"] == "9"
    assert slack.stats()["api_requests"] == before + 1

    missing = _call(agent, "slack_messages_history", channel="C0NOSUCH01")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    outside = _call(agent, "slack_messages_post", channel="C0DESIGN01", text="hello?")
    assert outside.status_code == 422 and outside.json()["type"] == "invalid_arguments"
    assert "not a member" in outside.json()["detail"]
    neither = _call(agent, "slack_users_lookup")
    assert neither.status_code == 422 and "exactly one" in neither.json()["detail"]
    bad = _call(agent, "slack_messages_history", channel="#general")
    assert bad.status_code == 422 and bad.json()["type"] == "invalid_arguments"


def _narrow_install(hub: Hub) -> None:
    """A second connection, installed without users:read.email (as a workspace admin's changed app
    configuration would): the hub records what Slack granted, and a lookup by email names the missing scope."""
    with hub.admin() as admin:
        start = admin.get("/connect/slack", params={"name": "chat-narrow", "scopes": "messaging.chat.read"})
    assert start.status_code == 302
    authorize = urlsplit(start.headers["location"])
    form = dict(parse_qsl(authorize.query))
    assert form["scope"] == READ_SCOPES
    form["scope"] = READ_SCOPES.replace(",users:read.email", "")
    with httpx.Client(timeout=30) as browser:
        consent = browser.post(
            f"{authorize.scheme}://{authorize.netloc}{authorize.path}", data={**form, "decision": "approve"}
        )
        assert consent.status_code == 302
        assert browser.get(consent.headers["location"]).status_code == 303
    with hub.admin() as admin:
        connection = next(c for c in admin.get("/admin/api/connections").json() if c["name"] == "chat-narrow")
    assert "users:read.email" not in connection["granted_scopes"]
    assert "users:read.email" in connection["requested_scopes"]

    key = hub.create_agent("reader")
    hub.grant("reader", "chat-narrow", "messaging.chat.read")
    with hub.agent(key) as agent:
        ada = _result(agent, "slack_users_lookup", user_id="U0ADA00001")
        assert ada["real_name"] == "Ada Lovelace" and "email" not in ada  # Slack leaves it out
        denied = _call(agent, "slack_users_lookup", email="ada@analytical-engines.example.com")
    assert denied.status_code == 403 and denied.json()["type"] == "scope_denied"
    assert denied.json()["missing_provider_scopes"] == ["users:read.email"]
    assert "users:read.email" in denied.json()["detail"]
