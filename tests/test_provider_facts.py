"""Allow-lists whose answer only the provider knows, through the hub on SQLite and PostgreSQL: a Drive file is
inside an allowed folder when one of its folders, at any depth, is listed (the hub walks its parents at
Google before deciding), and a Gmail reply goes to whoever the original came from. A refused call's own
request never reaches Google; only the look-ups the decision needed do."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.connectors.google_sandbox import google_sandbox
from tests.harness import Hub, Sandbox, run_hub


@pytest.fixture
def google(tmp_path: Path) -> Iterator[Sandbox]:
    with google_sandbox(tmp_path) as sandbox:
        yield sandbox


@pytest.fixture
def google_hub(tmp_path: Path, database_url: str, google: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, database_url, providers={"google_drive": google, "gmail": google}) as running:
        running.connect("google_drive", "drive", "storage.files.read,storage.files.write")
        running.connect("gmail", "mail", "messaging.email.read,messaging.email.send")
        yield running


def _ok(agent: httpx.Client, tool: str, **arguments: Any) -> dict[str, Any]:
    answer = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    return result


def _refused(agent: httpx.Client, tool: str, constraint: str, **arguments: Any) -> None:
    answer = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
    assert answer.status_code == 403 and answer.json()["type"] == "constraint_violated", answer.text
    assert constraint in answer.json()["detail"]


def test_a_file_is_inside_an_allowed_folder_through_any_of_its_ancestors(google_hub: Hub, google: Sandbox) -> None:
    hub = google_hub
    owner = hub.create_agent("owner")
    hub.grant("owner", "drive", "storage.files.read")
    hub.grant("owner", "drive", "storage.files.write")
    with hub.agent(owner) as agent:
        projects = _ok(agent, "gdrive_folders_create", name="Projects")
        deep = _ok(agent, "gdrive_folders_create", name="2026", parent_id=projects["id"])
        private = _ok(agent, "gdrive_folders_create", name="Private")
        inside = _ok(agent, "gdrive_files_upload", name="plan.md", content="# plan\n", folder_id=deep["id"])
        outside = _ok(agent, "gdrive_files_upload", name="salaries.md", content="# no\n", folder_id=private["id"])

    scoped = hub.create_agent("scoped")
    hub.grant("scoped", "drive", "storage.files.read", {"folders": [projects["id"]]})
    hub.grant("scoped", "drive", "storage.files.write", {"folders": [projects["id"]]})
    with hub.agent(scoped) as agent:
        assert _ok(agent, "gdrive_files_read", file_id=inside["id"])["content"] == "# plan\n"
        assert _ok(agent, "gdrive_files_get", file_id=deep["id"])["name"] == "2026"

        before = google.stats()["requests"]
        _refused(agent, "gdrive_files_read", "folders", file_id=outside["id"])
        _refused(agent, "gdrive_files_move", "folders", file_id=inside["id"], to_folder_id=private["id"])
        _refused(agent, "gdrive_files_get", "folders", file_id="1NoSuchFileAnywhere00000")
        made = google.stats()["requests"][len(before) :]
        # Only the parent look-ups: no download, no PATCH moving the file.
        assert made and all(method == "GET" and "/files/" in path for method, path in made), made
        assert not any(path.endswith(("/download", "/export")) for _, path in made)

        found = _ok(agent, "gdrive_files_search", query="name contains 'md'")
        names = {f["name"] for f in found["files"]}
        assert "salaries.md" not in names


def test_a_reply_goes_only_to_an_allowed_domain(google_hub: Hub, google: Sandbox) -> None:
    hub = google_hub
    key = hub.create_agent("mailer")
    hub.grant("mailer", "mail", "messaging.email.read")
    hub.grant("mailer", "mail", "messaging.email.send", {"recipients_domain": ["example.com"]})
    with hub.agent(key) as agent:
        (grace,) = _ok(agent, "gmail_messages_search", query="from:grace@navy.example.com")["messages"]
        session = {"X-Switchboard-Session": "reply-check"}
        before = google.stats()["api_requests"]
        refused = agent.post(
            "/v1/tools/gmail_messages_reply/call",
            json={"arguments": {"message_id": grace["id"], "body": "On my way."}},
            headers=session,
        )
        # navy.example.com is a subdomain, not example.com: the original's sender is outside the list.
        assert refused.status_code == 403 and refused.json()["type"] == "constraint_violated", refused.text
        assert "navy.example.com" in refused.json()["detail"]
        assert google.stats()["api_requests"] == before + 1  # reading the original's headers, nothing sent

    hub.grant("mailer", "mail", "messaging.email.send", {"recipients_domain": ["*.example.com"]})
    with hub.agent(key) as agent:
        replied = agent.post(
            "/v1/tools/gmail_messages_reply/call",
            json={"arguments": {"message_id": grace["id"], "body": "On my way."}},
            headers={"X-Switchboard-Session": "fresh"},
        )
        assert replied.status_code == 200, replied.text
