"""Google Drive and Gmail through the hub's agent API, on SQLite and PostgreSQL, with the hub and one Google
sandbox (serving both APIs, as one Google OAuth client does) as real processes on loopback: the OAuth
connect flow asks Google for exactly the scopes needed, the tools work end to end, an expired token is
refreshed once, and provider errors reach the agent as the design's problem types."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.connectors.google_sandbox import (
    DRIVE,
    DRIVE_READONLY,
    GMAIL_COMPOSE,
    GMAIL_READONLY,
    google_sandbox,
    throttle,
)
from tests.harness import Hub, Sandbox, run_hub

ME = "ada.lovelace@example.com"


@pytest.fixture
def google(tmp_path: Path) -> Iterator[Sandbox]:
    with google_sandbox(tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def google_hub(tmp_path: Path, database_url: str, google: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"google_drive": google, "gmail": google}) as running:
        yield running


def _authorize_query(hub: Hub, provider: str, scopes: str) -> dict[str, list[str]]:
    with hub.admin() as admin:
        start = admin.get(f"/connect/{provider}", params={"name": f"probe-{provider}", "scopes": scopes})
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert urlsplit(location).path == "/o/oauth2/v2/auth"
    return parse_qs(urlsplit(location).query)


def _call(agent: httpx.Client, tool: str, **arguments: Any) -> dict[str, Any]:
    # Each call its own session: these tests exercise the tools; tests/test_data_flow.py covers how reading
    # outsiders' content (a shared file, an inbound mail) holds the sinks of the same session.
    session = {"X-Switchboard-Session": str(uuid.uuid4())}
    answer = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments}, headers=session)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def _asks_google_for_exactly_the_scopes_needed(google_hub: Hub) -> None:
    query = _authorize_query(google_hub, "google_drive", "storage.files.read,storage.files.write")
    assert query["scope"] == [DRIVE]  # drive covers reading: drive.readonly is not asked for as well
    assert (query["access_type"], query["prompt"], query["include_granted_scopes"]) == (
        ["offline"],
        ["consent"],
        ["true"],
    )
    assert (query["response_type"], query["code_challenge_method"]) == (["code"], ["S256"])
    assert len(query["code_challenge"][0]) == 43 and len(query["state"][0]) >= 43
    assert _authorize_query(google_hub, "google_drive", "storage.files.read")["scope"] == [DRIVE_READONLY]
    assert _authorize_query(google_hub, "gmail", "messaging.email.read")["scope"] == [GMAIL_READONLY]
    assert _authorize_query(google_hub, "gmail", "messaging.email.send")["scope"] == [GMAIL_COMPOSE]
    both = _authorize_query(google_hub, "gmail", "messaging.email.read,messaging.email.send")["scope"]
    assert both == [f"{GMAIL_COMPOSE} {GMAIL_READONLY}"]


def test_connect_then_drive_and_gmail_tools_through_the_agent_api(google_hub: Hub, google: Sandbox) -> None:
    hub = google_hub
    _asks_google_for_exactly_the_scopes_needed(hub)
    assert hub.connect("google_drive", "drive", "storage.files.read,storage.files.write").status_code == 303
    assert hub.connect("gmail", "mail", "messaging.email.read,messaging.email.send").status_code == 303
    with hub.admin() as admin:
        connections = {c["name"]: c for c in admin.get("/admin/api/connections").json()}
    assert connections["drive"]["status"] == "active" and connections["drive"]["granted_scopes"] == [DRIVE]
    # Google's incremental authorisation: the Gmail token also carries what this account granted before.
    assert connections["mail"]["requested_scopes"] == [GMAIL_COMPOSE, GMAIL_READONLY]
    assert connections["mail"]["granted_scopes"] == sorted([DRIVE, GMAIL_COMPOSE, GMAIL_READONLY])

    key = hub.create_agent("assistant")
    for connection, scope in (
        ("drive", "storage.files.read"),
        ("drive", "storage.files.write"),
        ("mail", "messaging.email.read"),
        ("mail", "messaging.email.send"),
    ):
        hub.grant("assistant", connection, scope)
    # The assistant mails addresses it read (its own, from a message): that flow is allowed explicitly.
    assert hub.cli("flow", "allow", "assistant", "pii.email", "messaging.email.send").returncode == 0
    with hub.agent(key) as agent:
        listed = {t["name"] for t in agent.get("/v1/tools").json()["tools"]}
        assert {"gdrive_files_share", "gdrive_files_read", "gmail_messages_reply", "gmail_labels_list"} <= listed
        _walk_drive(agent, google)
        _walk_gmail(agent)
        _errors(agent, hub, google)


def _walk_drive(agent: httpx.Client, google: Sandbox) -> None:
    root = _call(agent, "gdrive_files_list")
    assert root["files"][0]["name"] == "Projects" and root["files"][0]["is_folder"] is True
    folder = _call(agent, "gdrive_folders_create", name="Agent output")
    uploaded = _call(
        agent,
        "gdrive_files_upload",
        name="notes.md",
        content="# From the agent\n",
        folder_id=folder["id"],
        mime_type="text/markdown",
    )
    assert uploaded["owners"] == [ME] and uploaded["parents"] == [folder["id"]]
    inside = _call(agent, "gdrive_files_list", folder_id=folder["id"])
    assert [f["id"] for f in inside["files"]] == [uploaded["id"]]
    read = _call(agent, "gdrive_files_read", file_id=uploaded["id"])
    assert (read["format"], read["content"]) == ("text", "# From the agent\n")
    doc = _call(agent, "gdrive_files_search", query="name contains 'Launch'")["files"][0]
    assert _call(agent, "gdrive_files_read", file_id=doc["id"])["content"].startswith("# Launch plan")
    moved = _call(agent, "gdrive_files_move", file_id=uploaded["id"], to_folder_id="root")
    assert moved["parents"] != [folder["id"]]
    shared = _call(agent, "gdrive_files_share", file_id=uploaded["id"], email="grace@navy.example.com", role="reader")
    assert shared["role"] == "reader" and shared["email"] == "grace@navy.example.com"
    assert _call(agent, "gdrive_files_get", file_id=uploaded["id"])["name"] == "notes.md"


def _walk_gmail(agent: httpx.Client) -> None:
    found = _call(agent, "gmail_messages_search", query="from:grace@navy.example.com")
    (grace,) = found["messages"]
    assert grace["from"] == "Grace Hopper <grace@navy.example.com>" and grace["subject"] == "Compiler meeting"
    message = _call(agent, "gmail_messages_get", message_id=grace["id"])
    assert message["body"].startswith("Ada,") and message["body_format"] == "text"
    reply = _call(agent, "gmail_messages_reply", message_id=grace["id"], body="See you Thursday.")
    assert reply["thread_id"] == grace["thread_id"]
    sent = _call(agent, "gmail_messages_send", to=[ME], subject="Note to self", body="Buy gears.")
    assert {"SENT", "INBOX"} <= set(sent["labels"])
    assert _call(agent, "gmail_drafts_create", to=[ME], subject="Later", body="…")["draft_id"]
    assert any(label["id"] == "INBOX" for label in _call(agent, "gmail_labels_list")["labels"])
    invoice = _call(agent, "gmail_messages_search", query="has:attachment")["messages"][0]
    attachments = _call(agent, "gmail_messages_get", message_id=invoice["id"])["attachments"]
    assert [a["filename"] for a in attachments] == ["invoice-0324.pdf"]


def _errors(agent: httpx.Client, hub: Hub, google: Sandbox) -> None:
    # Google expires the token: the hub refreshes once (the refresh token does not rotate) and retries.
    refreshes = google.stats()["token_requests"].get("refresh_token", 0)
    google.control("expire-tokens")
    assert _call(agent, "gdrive_files_list", page_size=1)["files"]
    assert google.stats()["token_requests"]["refresh_token"] == refreshes + 1

    # A rate-limited read is retried within the budget; a rate-limited write is not.
    throttle(google, 1, 1, "userRateLimitExceeded")
    before = google.stats()["api_requests"]
    assert _call(agent, "gdrive_files_list", page_size=1)["files"]
    assert google.stats()["api_requests"] == before + 2
    throttle(google, 1, 9)
    before = google.stats()["api_requests"]
    write = agent.post("/v1/tools/gdrive_folders_create/call", json={"arguments": {"name": "Twice?"}})
    assert write.status_code == 429 and write.json()["type"] == "rate_limited"
    assert write.headers["retry-after"] == "9"
    assert google.stats()["api_requests"] == before + 1

    missing = agent.post("/v1/tools/gdrive_files_get/call", json={"arguments": {"file_id": "1NoSuchFileAnywhere00000"}})
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    refused = agent.post("/v1/tools/gdrive_files_search/call", json={"arguments": {"query": "name contains"}})
    assert refused.status_code == 422 and refused.json()["type"] == "invalid_arguments"
    too_long = agent.post("/v1/tools/gdrive_files_search/call", json={"arguments": {"query": "x" * 1001}})
    assert too_long.status_code == 422 and too_long.json()["type"] == "invalid_arguments"
    bad_address = agent.post(
        "/v1/tools/gmail_messages_send/call",
        json={"arguments": {"to": ["not an address"], "subject": "s", "body": "b"}},
    )
    assert bad_address.status_code == 422

    # Revoked at Google (the account removed the app): the refresh fails and the connection needs reauth.
    google.control("revoke-all")
    google.control("expire-tokens")
    dead = agent.post("/v1/tools/gmail_labels_list/call", json={"arguments": {}})
    assert dead.status_code == 409 and dead.json()["type"] == "connection_needs_reauth"
    with hub.admin() as admin:
        status = {c["name"]: c["status"] for c in admin.get("/admin/api/connections").json()}
    assert status["mail"] == "needs_reauth"
    hub.secrets |= set(google.issued_tokens())
