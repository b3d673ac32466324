"""The CLI against a running hub, master-key rotation with the hub serving, and a dead grant ending in
`needs_reauth` rather than a refresh loop."""

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from hub.db import Database
from hub.models import Connection, HubMeta
from tests.harness import Hub, Sandbox


def _eventually(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    """A change made by another process reaches the hub within its poll interval (0.25 s by default)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _search(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 1}})


def test_cli_agent_grant_and_revoke_reach_the_running_hub(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    created = hub.cli("agent", "create", "cli-bot", "--description", "made by the CLI")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("sbk_") and len(key) > 40
    with hub.agent(key) as agent:
        assert _eventually(lambda: agent.get("/v1/tools").status_code == 200)
        assert agent.get("/v1/tools").json()["tools"] == []

        assert hub.cli("grant", "cli-bot", "crm", "crm.contacts.read").returncode == 0
        assert _eventually(lambda: _search(agent).status_code == 200)
        listed = hub.cli("agent", "list").stdout
        assert "cli-bot" in listed and "crm.contacts.read@crm" in listed and key not in listed

        assert hub.cli("revoke-grant", "cli-bot", "crm", "crm.contacts.read").returncode == 0
        assert _eventually(lambda: _search(agent).status_code == 403)

        assert hub.cli("agent", "revoke", "cli-bot").returncode == 0
        assert _eventually(lambda: _search(agent).status_code == 401)


def test_cli_refuses_bad_input_without_a_traceback(hub: Hub) -> None:
    for args in (
        ("agent", "create", "Bad Name!"),
        ("grant", "nobody", "crm", "crm.contacts.read"),
        ("grant", "x", "y", "crm.contacts.read", "--constraints", "{not json"),
    ):
        result = hub.cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.startswith("error:")


def test_master_key_rotation_while_serving(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    db = Database(hub.database_url)

    def key_ids() -> set[str]:
        def read(session) -> set[str]:  # type: ignore[no-untyped-def]
            sealed = [c.access_token_enc for c in session.scalars(select(Connection))]
            sealed += [c.refresh_token_enc for c in session.scalars(select(Connection))]
            sealed += [m.value for m in session.scalars(select(HubMeta)) if m.value.startswith("v1.")]
            return {s.split(".")[1] for s in sealed if s}

        return db.run_sync(read)

    before = key_ids()
    assert len(before) == 1
    rotated = hub.cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    after = key_ids()
    assert len(after) == 1 and after != before
    db.dispose()

    # The serving hub opens tokens sealed under the new key: force a refresh, which reads the refresh token.
    hubspot.control("expire-tokens")
    with hub.agent(key) as agent:
        assert _search(agent).status_code == 200
    assert hubspot.stats()["token_requests"]["refresh_token"] == 1


def test_a_dead_grant_ends_in_needs_reauth_not_a_loop(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    with hub.agent(key) as agent:
        assert _search(agent).status_code == 200
        hubspot.control("revoke-all")
        hubspot.control("expire-tokens")
        first = _search(agent)
        assert first.status_code == 409 and first.json()["type"] == "connection_needs_reauth"
        refreshes = hubspot.stats()["token_requests"]["refresh_token"]
        again = _search(agent)
        assert again.status_code == 409
        assert hubspot.stats()["token_requests"]["refresh_token"] == refreshes == 1
        with hub.admin() as admin:
            (connection,) = admin.get("/admin/api/connections").json()
        assert connection["status"] == "needs_reauth" and "invalid_grant" in connection["last_error"]

        # Reconnecting brings it back, grants intact.
        assert hub.connect("hubspot", "crm", "crm.contacts.read").status_code == 303
        assert _eventually(lambda: _search(agent).status_code == 200)


def test_serve_refuses_master_keys_that_cannot_open_its_secrets(hub: Hub) -> None:
    wrong = {**hub.env, "SWITCHBOARD_MASTER_KEYS": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
    result = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--port", "1"], env=wrong, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "check SWITCHBOARD_MASTER_KEYS" in result.stderr and "Traceback" not in result.stderr


def test_docs_tools_table_is_current() -> None:
    """docs/tools.md is `switchboard tools`' output: adding a tool without regenerating it fails here."""
    root = Path(__file__).resolve().parents[1]
    printed = subprocess.run(
        [sys.executable, "-m", "hub", "tools"], capture_output=True, text=True, check=True, cwd=root
    )
    assert printed.stdout == (root / "docs" / "tools.md").read_text()
