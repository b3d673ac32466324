"""Each Slack tool against the Slack sandbox on loopback, through the real SDK client (slack_sdk's
AsyncWebClient on a pooled aiohttp session): shaped output, paging, and every failure mapped to its typed
connector error."""

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
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
    ProviderTimeout,
    ProviderUnavailable,
)
from connectors.slack.client import SlackClient
from connectors.slack.tools import Channel, ChannelPage, Message, MessagePage, PostedMessage, ThreadPage, User
from hub.demo import approve_consent
from tests.harness import Sandbox, free_port, run_sandbox

TOOLS = {t.name: t for t in CONNECTORS["slack"].tools}
ALL = ",".join(CONNECTORS["slack"].manifest.provider_scopes(["messaging.chat.read", "messaging.chat.send"]))
REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("slack", tmp_path_factory.mktemp("slack")) as running:
        yield running


def _access_token(sandbox: Sandbox, scopes: str) -> str:
    """Install the app through the sandbox's consent page and exchange the code."""
    query = urlencode({"client_id": sandbox.client_id, "redirect_uri": REDIRECT, "scope": scopes, "state": "s"})
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, f"{sandbox.url}/oauth/v2/authorize?{query}")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        answer = browser.post(
            f"{sandbox.url}/api/oauth.v2.access",
            data={"code": code, "redirect_uri": REDIRECT},
            auth=(sandbox.client_id, sandbox.client_secret),
        )
    body = answer.json()
    assert body["ok"] is True, body
    token: str = body["access_token"]
    return token


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[SlackClient]:
    built = SlackClient(access_token=_access_token(sandbox, ALL), api_base=f"{sandbox.url}/api", timeout=10)
    yield built
    await built.aclose()


async def _run(client: SlackClient, name: str, **arguments: Any) -> BaseModel:
    tool = TOOLS[name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


def _requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["api_requests"])


def test_every_slack_tool_is_exercised_here() -> None:
    exercised = {
        "slack_channels_list",
        "slack_messages_history",
        "slack_thread_replies",
        "slack_messages_post",
        "slack_thread_reply",
        "slack_users_lookup",
    }
    assert set(TOOLS) == exercised, f"add a sandbox test for {sorted(set(TOOLS) - exercised)} to this module"


async def test_channels_list_pages_public_and_joined_private_channels(client: SlackClient) -> None:
    everything = await _run(client, "slack_channels_list", include_archived=True)
    assert isinstance(everything, ChannelPage) and everything.next_cursor is None
    by_name = {c.name: c for c in everything.channels}
    assert set(by_name) == {"general", "random", "engineering", "design", "old-news", "leadership"}  # not payroll
    assert by_name["leadership"].is_private and by_name["leadership"].is_member
    assert not by_name["design"].is_member and by_name["old-news"].is_archived
    assert by_name["general"].topic == "Company-wide announcements" and by_name["general"].num_members == 5
    assert all(set(c.model_dump()) == set(Channel.model_fields) for c in everything.channels)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await _run(client, "slack_channels_list", limit=2, cursor=cursor)
        assert isinstance(page, ChannelPage) and len(page.channels) <= 2
        seen += [c.id for c in page.channels]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == len(everything.channels) - 1  # archived ones left out by default
    assert "C0OLDNEWS1" not in seen


async def test_history_is_newest_first_and_a_thread_reads_parent_first(client: SlackClient) -> None:
    first = await _run(client, "slack_messages_history", channel="C0GENERAL1", limit=2)
    assert isinstance(first, MessagePage) and first.channel == "C0GENERAL1" and first.next_cursor
    rest = await _run(client, "slack_messages_history", channel="C0GENERAL1", cursor=first.next_cursor)
    assert isinstance(rest, MessagePage) and rest.next_cursor is None
    messages = first.messages + rest.messages
    assert [float(m.ts) for m in messages] == sorted((float(m.ts) for m in messages), reverse=True)
    assert all(m.user and m.user.startswith("U") for m in messages)  # authors kept as user ids
    parent = next(m for m in messages if m.reply_count)
    assert parent.reply_count == 2 and parent.thread_ts == parent.ts

    thread = await _run(client, "slack_thread_replies", channel="C0GENERAL1", thread_ts=parent.ts)
    assert isinstance(thread, ThreadPage) and thread.next_cursor is None
    assert thread.messages[0].ts == parent.ts
    assert [m.text for m in thread.messages[1:]] == ["Can we move it to 11:00?", "11:00 works, updated the invite."]
    head = await _run(client, "slack_thread_replies", channel="C0GENERAL1", thread_ts=parent.ts, limit=2)
    assert isinstance(head, ThreadPage) and head.next_cursor
    tail = await _run(
        client, "slack_thread_replies", channel="C0GENERAL1", thread_ts=parent.ts, cursor=head.next_cursor
    )
    assert isinstance(tail, ThreadPage)
    assert [m.ts for m in head.messages + tail.messages] == [m.ts for m in thread.messages]

    since = await _run(client, "slack_messages_history", channel="C0GENERAL1", oldest=parent.ts)
    assert isinstance(since, MessagePage) and parent.ts not in [m.ts for m in since.messages]
    assert all(float(m.ts) > float(parent.ts) for m in since.messages)


async def test_post_appears_in_history_and_a_thread_reply_in_the_thread(client: SlackClient) -> None:
    posted = await _run(client, "slack_messages_post", channel="C0RANDOM01", text="Lunch chess: *12:30* in the lobby")
    assert isinstance(posted, PostedMessage)
    assert (posted.channel, posted.thread_ts, posted.text) == ("C0RANDOM01", None, "Lunch chess: *12:30* in the lobby")
    latest = await _run(client, "slack_messages_history", channel="C0RANDOM01", limit=1)
    assert isinstance(latest, MessagePage)
    (mine,) = latest.messages
    assert (mine.ts, mine.text, mine.user) == (posted.ts, posted.text, "U0SBBOT001") and mine.bot_id

    reply = await _run(client, "slack_thread_reply", channel="C0RANDOM01", thread_ts=posted.ts, text="Board is set up")
    assert isinstance(reply, PostedMessage) and reply.thread_ts == posted.ts
    shown = await _run(
        client,
        "slack_thread_reply",
        channel="C0RANDOM01",
        thread_ts=posted.ts,
        text="Starting now",
        also_send_to_channel=True,
    )
    assert isinstance(shown, PostedMessage)
    thread = await _run(client, "slack_thread_replies", channel="C0RANDOM01", thread_ts=posted.ts)
    assert isinstance(thread, ThreadPage)
    assert [m.ts for m in thread.messages] == [posted.ts, reply.ts, shown.ts]
    channel = await _run(client, "slack_messages_history", channel="C0RANDOM01", limit=2)
    assert isinstance(channel, MessagePage)
    assert [m.ts for m in channel.messages] == [shown.ts, posted.ts]  # only the broadcast reply shows
    assert channel.messages[0].subtype == "thread_broadcast" and channel.messages[1].reply_count == 2


async def test_long_text_is_capped_and_flagged(client: SlackClient) -> None:
    long = "x" * 5000
    posted = await client.call(client.writer.chat_postMessage, channel="C0ENGINE01", text=long)
    page = await _run(client, "slack_messages_history", channel="C0ENGINE01", limit=1)
    assert isinstance(page, MessagePage)
    (message,) = page.messages
    assert message.ts == posted["ts"] and message.truncated is True and len(message.text) == 4000
    with pytest.raises(ValueError, match="at most 4000"):
        TOOLS["slack_messages_post"].input_model.model_validate({"channel": "C0ENGINE01", "text": long})


async def test_users_lookup_by_id_and_by_email(sandbox: Sandbox, client: SlackClient) -> None:
    grace = await _run(client, "slack_users_lookup", email="grace@navy.example.com")
    assert isinstance(grace, User)
    assert (grace.id, grace.real_name, grace.title, grace.tz) == (
        "U0GRACE001",
        "Grace Hopper",
        "Rear Admiral",
        "America/New_York",
    )
    again = await _run(client, "slack_users_lookup", user_id=grace.id)
    assert again == grace
    assert set(grace.model_dump()) == set(User.model_fields)
    gone = await _run(client, "slack_users_lookup", user_id="U0CHAR0001")
    assert isinstance(gone, User) and gone.deleted
    before = _requests(sandbox)
    for arguments in ({}, {"user_id": "U0ADA00001", "email": "ada@analytical-engines.example.com"}):
        with pytest.raises(ProviderRejected, match="exactly one"):
            await _run(client, "slack_users_lookup", **arguments)
    assert _requests(sandbox) == before  # refused before any call


async def test_not_found_and_rejections_name_the_reason(client: SlackClient) -> None:
    with pytest.raises(ProviderNotFound, match="channel_not_found"):
        await _run(client, "slack_messages_history", channel="C0NOSUCH01")
    with pytest.raises(ProviderNotFound, match="channel_not_found"):
        await _run(client, "slack_messages_history", channel="G0PAYROLL1")  # private, the app is not in it
    with pytest.raises(ProviderNotFound, match="thread_not_found"):
        await _run(client, "slack_thread_replies", channel="C0GENERAL1", thread_ts="1000000000.000001")
    with pytest.raises(ProviderNotFound, match="users_not_found"):
        await _run(client, "slack_users_lookup", email="eve@example.com")
    with pytest.raises(ProviderNotFound, match="user_not_found"):
        await _run(client, "slack_users_lookup", user_id="U0NOBODY01")
    with pytest.raises(ProviderRejected, match="not_in_channel: the app is not a member"):
        await _run(client, "slack_messages_post", channel="C0DESIGN01", text="hello?")
    with pytest.raises(ProviderRejected, match="is_archived"):
        await _run(client, "slack_messages_post", channel="C0OLDNEWS1", text="hello?")
    with pytest.raises(ProviderRejected, match="invalid_cursor"):
        await _run(client, "slack_channels_list", cursor="bm9wZQ==")


async def test_missing_scope_is_provider_forbidden_naming_the_scope(sandbox: Sandbox) -> None:
    narrow = SlackClient(
        access_token=_access_token(sandbox, "channels:read,channels:history,users:read"),
        api_base=f"{sandbox.url}/api",
        timeout=10,
    )
    try:
        assert isinstance(await _run(narrow, "slack_messages_history", channel="C0GENERAL1"), MessagePage)
        for name, arguments, needed in (
            ("slack_channels_list", {}, "groups:read"),
            ("slack_messages_history", {"channel": "G0LEADERS1"}, "groups:history"),
            ("slack_messages_post", {"channel": "C0GENERAL1", "text": "hi"}, "chat:write"),
            ("slack_users_lookup", {"email": "ada@analytical-engines.example.com"}, "users:read.email"),
        ):
            with pytest.raises(ProviderForbidden, match=f"needs {needed}") as caught:
                await _run(narrow, name, **arguments)
            assert caught.value.missing_scopes == (needed,)
        # users:read without users:read.email: Slack leaves the email out rather than failing.
        ada = await _run(narrow, "slack_users_lookup", user_id="U0ADA00001")
        assert isinstance(ada, User) and ada.real_name == "Ada Lovelace" and ada.email is None
    finally:
        await narrow.aclose()


async def test_expired_and_revoked_tokens_are_provider_auth_expired(sandbox: Sandbox) -> None:
    for action, error in (("expire-tokens", "token_expired"), ("revoke-all", "token_revoked")):
        stale = SlackClient(access_token=_access_token(sandbox, ALL), api_base=f"{sandbox.url}/api", timeout=10)
        try:
            sandbox.control(action)
            with pytest.raises(ProviderAuthExpired, match=error):
                await _run(stale, "slack_channels_list")
        finally:
            await stale.aclose()
    forged = SlackClient(access_token="xoxb-1-2-forged", api_base=f"{sandbox.url}/api", timeout=10)
    try:
        with pytest.raises(ProviderAuthExpired, match="invalid_auth"):
            await _run(forged, "slack_channels_list")
    finally:
        await forged.aclose()


async def test_throttled_call_is_provider_rate_limited_with_retry_after(sandbox: Sandbox, client: SlackClient) -> None:
    httpx.post(f"{sandbox.url}/_control/throttle", json={"count": 1, "retry_after": 7}).raise_for_status()
    before = _requests(sandbox)
    with pytest.raises(ProviderRateLimited) as caught:
        await _run(client, "slack_messages_post", channel="C0GENERAL1", text="once")
    assert caught.value.retry_after == 7.0
    assert _requests(sandbox) == before + 1  # the SDK did not retry; the hub decides (reads only)
    assert isinstance(await _run(client, "slack_channels_list"), ChannelPage)


async def test_calls_share_one_kept_alive_connection(sandbox: Sandbox) -> None:
    opened: list[object] = []
    trace = aiohttp.TraceConfig()

    async def on_create(session: object, context: object, params: object) -> None:
        opened.append(params)

    trace.on_connection_create_end.append(on_create)
    pooled = SlackClient(
        access_token=_access_token(sandbox, ALL), api_base=f"{sandbox.url}/api", timeout=10, trace_configs=[trace]
    )
    try:
        for _ in range(5):
            await _run(pooled, "slack_messages_history", channel="C0GENERAL1", limit=1)
        await _run(pooled, "slack_messages_post", channel="C0GENERAL1", text="pooled")
    finally:
        pooled.close()  # from inside the loop: closes on the next turn of it
        await asyncio.sleep(0.05)
    assert len(opened) == 1


def _silent_server() -> tuple[socket.socket, threading.Event]:
    """A loopback server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                break
        for conn in held:
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener, stop


async def test_no_answer_is_provider_timeout_and_no_server_is_provider_unavailable() -> None:
    listener, stop = _silent_server()
    port = listener.getsockname()[1]
    slow = SlackClient(access_token="xoxb-t", api_base=f"http://127.0.0.1:{port}/api", timeout=0.3)
    try:
        with pytest.raises(ProviderTimeout):
            await _run(slow, "slack_channels_list")
        with pytest.raises(ProviderTimeout):
            await _run(slow, "slack_messages_post", channel="C0GENERAL1", text="x")
    finally:
        await slow.aclose()
        stop.set()
        listener.close()
    nowhere = SlackClient(access_token="xoxb-t", api_base=f"http://127.0.0.1:{free_port()}/api", timeout=2)
    try:
        with pytest.raises(ProviderUnavailable, match="could not be reached"):
            await _run(nowhere, "slack_users_lookup", user_id="U0ADA00001")
    finally:
        await nowhere.aclose()


def test_close_outside_a_loop_is_safe_for_an_unused_client() -> None:
    SlackClient(access_token="xoxb-t", api_base="https://slack.com/api", timeout=1).close()


def test_message_shape_drops_slack_noise() -> None:
    assert set(Message.model_fields) == {
        "ts",
        "user",
        "bot_id",
        "text",
        "truncated",
        "subtype",
        "thread_ts",
        "reply_count",
        "edited",
    }
