"""The agent roster and each agent's own page, and the connections' health, driven like a browser would and
checked through the admin API and the agent API."""

import re
from datetime import UTC, datetime
from typing import Any

from tests.admin.page import KEY, csrf_of, htmx, signed_in
from tests.harness import Hub, Sandbox

ROSTER = {
    "role": "Answers support tickets",
    "owner": "Support team <ops@example.com>",
    "model": "claude-sonnet-4-5",
    "runtime": "Claude Code on the build box",
}


def _agent(hub: Hub, name: str) -> dict[str, Any]:
    with hub.admin() as admin:
        found = admin.get(f"/admin/api/agents/{name}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body


def _connection(hub: Hub, name: str) -> dict[str, Any]:
    with hub.admin() as admin:
        found: dict[str, Any] = {c["name"]: c for c in admin.get("/admin/api/connections").json()}[name]
        return found


def _roster_row(page: str, name: str) -> str:
    return page.split(f'<th scope="row"><a href="/admin/agents/{name}">')[1].split("</tr>")[0]


def _iso(value: str) -> str:
    """An API timestamp as the page writes it in `<time datetime=…>`."""
    return datetime.fromisoformat(value).astimezone(UTC).isoformat(timespec="seconds")


def test_a_fresh_hub_tells_a_new_admin_what_to_do_first(hub: Hub) -> None:
    with signed_in(hub) as browser:
        page = browser.get("/admin/").text
    connections = page.split('id="connections"')[1].split('id="agents"')[0]
    assert "No connections yet." in connections and "Connect an account" in connections
    agents = page.split('id="agents"')[1].split('id="approvals"')[0]
    assert "No agents yet." in agents and "Create one with the form below" in agents
    grant_form = agents.split('id="grant-form"')[1].split("</form>")[0]
    assert 'href="/admin/#connections">Connect an account</a>' in grant_form and "<select" not in grant_form


def test_an_agent_is_created_with_its_roster_details_and_edited_on_its_page(hub: Hub) -> None:
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        form = {"name": "support-bot", "description": "reads contacts", **ROSTER}
        assert browser.post("/admin/agents", data=form).status_code == 403  # no CSRF token
        with hub.admin() as admin:
            assert admin.get("/admin/api/agents").json() == []

        created = browser.post("/admin/agents", data=form, headers=htmx(csrf))
        assert created.status_code == 201 and created.text.lstrip().startswith('<section id="agents"')
        (key,) = set(KEY.findall(created.text))
        hub.secrets.add(key)
        assert 'href="/admin/agents/support-bot">grant support-bot its scopes</a>' in created.text
        row = _roster_row(created.text, "support-bot")
        assert "Answers support tickets" in row and "Support team &lt;ops@example.com&gt;" in row
        assert "<code>claude-sonnet-4-5</code>" in row and "Claude Code on the build box" in row
        assert re.search(r'class="num">1<span class="visually-hidden"> working key</span>', row)
        assert re.search(r'class="num">0<span class="visually-hidden"> grants</span>', row)
        assert "no calls yet" in row and "status-active" in row
        assert {k: _agent(hub, "support-bot")[k] for k in ROSTER} == ROSTER

        # Edited on its page: a fragment with htmx, Post/Redirect/Get without.
        page = browser.get("/admin/agents/support-bot")
        assert page.status_code == 200 and '<h1 id="agent-h">' in page.text
        details = page.text.split('<form id="details-form"')[1].split("</form>")[0]
        assert 'value="Claude Code on the build box"' in details and 'for="details-role"' in details
        edit = {"description": "reads and updates contacts", **ROSTER, "model": "claude-opus-4-1", "owner": "Ada"}
        assert browser.post("/admin/agents/support-bot", data=edit).status_code == 403
        saved = browser.post("/admin/agents/support-bot", data=edit, headers=htmx(csrf))
        assert saved.status_code == 200 and saved.text.lstrip().startswith('<section id="agent"')
        assert "Details saved." in saved.text and 'value="claude-opus-4-1"' in saved.text
        agent = _agent(hub, "support-bot")
        assert (agent["model"], agent["owner"], agent["description"]) == ("claude-opus-4-1", "Ada", edit["description"])

        too_long = browser.post("/admin/agents/support-bot", data={**edit, "role": "r" * 201}, headers=htmx(csrf))
        assert too_long.status_code == 422 and 'id="details-form-error"' in too_long.text
        assert "limited to 200 characters" in too_long.text and 'value="' + "r" * 201 + '"' in too_long.text
        plain = browser.post("/admin/agents/support-bot", data={**edit, "runtime": "cron", "csrf_token": csrf})
        assert plain.status_code == 303 and plain.headers["location"] == "/admin/agents/support-bot?done=agent-saved"
        assert "Details saved." in browser.get(plain.headers["location"]).text
        assert _agent(hub, "support-bot")["runtime"] == "cron"
        missing = browser.get("/admin/agents/nobody")
        assert missing.status_code == 404 and "no agent named" in missing.text

    # The admin API: every field optional, what is left out stays; the old untrusted_policy-only body works.
    with hub.admin() as admin:
        patched = admin.patch("/admin/api/agents/support-bot", json={"role": "Triage"})
        assert patched.status_code == 200 and patched.json()["role"] == "Triage"
        assert patched.json()["model"] == "claude-opus-4-1" and patched.json()["untrusted_policy"] == "approve"
        policy = admin.patch("/admin/api/agents/support-bot", json={"untrusted_policy": "refuse"})
        assert policy.status_code == 200 and policy.json()["untrusted_policy"] == "refuse"
        assert policy.json()["role"] == "Triage"
        assert admin.patch("/admin/api/agents/support-bot", json={"role": "x" * 201}).status_code == 422
        assert admin.patch("/admin/api/agents/support-bot", json={"owner": "a\x00b"}).status_code == 422
        assert admin.patch("/admin/api/agents/support-bot", json={"colour": "red"}).status_code == 422
        made = admin.post("/admin/api/agents", json={"name": "api-bot", **ROSTER})
        assert made.status_code == 201 and made.json()["agent"]["runtime"] == ROSTER["runtime"]
        hub.secrets.add(made.json()["key"])

    # The CLI: the same fields on create, and an edit that changes only what it is given.
    created_cli = hub.cli("agent", "create", "cli-bot", "--role", "Nightly report", "--model", "claude-haiku-4-5")
    assert created_cli.returncode == 0, created_cli.stderr
    hub.secrets.add(created_cli.stdout.strip().splitlines()[-1])
    assert hub.cli("agent", "edit", "cli-bot", "--owner", "Finance", "--runtime", "cron job").returncode == 0
    cli_bot = _agent(hub, "cli-bot")
    assert (cli_bot["role"], cli_bot["owner"], cli_bot["model"], cli_bot["runtime"]) == (
        "Nightly report",
        "Finance",
        "claude-haiku-4-5",
        "cron job",
    )


def test_the_agent_page_shows_keys_grants_and_calls_and_revokes_what_it_made(hub: Hub) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    first = hub.create_agent("bot")
    grant = {"connection": "crm", "scope": "crm.contacts.read", "constraints": '{"max_results": 5}'}
    with signed_in(hub) as browser, hub.agent(first) as agent:
        csrf = csrf_of(browser)
        assert browser.post("/admin/agents/bot/grants", data=grant).status_code == 403
        bad = browser.post("/admin/agents/bot/grants", data={**grant, "constraints": "{oops"}, headers=htmx(csrf))
        assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text and "not valid JSON" in bad.text
        granted = browser.post("/admin/agents/bot/grants", data=grant, headers=htmx(csrf))
        assert granted.status_code == 200 and granted.text.lstrip().startswith('<section id="agent"')
        assert "Grant saved" in granted.text and "&#34;max_results&#34;: 5" in granted.text

        assert agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}}).status_code == 200
        denied = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "e@example.com"}})
        assert denied.status_code == 403

        page = browser.get("/admin/agents/bot").text
        assert f"<code>{first[:8]}…</code>" in page and first not in page
        calls = page.split('<section id="calls"')[1]
        rows = calls.split("<tbody>")[1].split("</tr>")
        assert "hubspot_contacts_create" in rows[0] and "decision-deny" in rows[0] and "scope_denied" in rows[0]
        assert "hubspot_contacts_search" in rows[1] and "decision-allow" in rows[1]
        assert 'href="/admin/activity?agent=bot"' in calls
        refreshed = browser.get("/admin/agents/bot/calls", headers=htmx(csrf))
        assert refreshed.status_code == 200 and refreshed.text.lstrip().startswith('<section id="calls"')
        assert "hubspot_contacts_search" in refreshed.text and "<html" not in refreshed.text
        roster = _roster_row(browser.get("/admin/").text, "bot")
        assert re.search(r'class="num">1<span class="visually-hidden"> grant</span>', roster)
        assert '<time datetime="' in roster and "no calls yet" not in roster

        # A second key with an expiry, shown once; revoking it stops it at once, the first key still works.
        assert browser.post("/admin/agents/bot/keys", data={"expires_on": "2999-01-01"}).status_code == 403
        past = browser.post("/admin/agents/bot/keys", data={"expires_on": "2001-01-01"}, headers=htmx(csrf))
        assert past.status_code == 422 and "in the future" in past.text and 'id="key-form-error"' in past.text
        made = browser.post("/admin/agents/bot/keys", data={"expires_on": "2999-01-01"}, headers=htmx(csrf))
        assert made.status_code == 201 and "shown only this once" in made.text
        (second,) = set(KEY.findall(made.text))
        assert "2999-01-01 00:00 UTC" in made.text and "grant bot its scopes" not in made.text
        with hub.agent(second) as other:
            assert other.get("/v1/tools").status_code == 200
            key_id = next(k["id"] for k in _agent(hub, "bot")["keys"] if k["expires_at"])
            revoked = browser.post(f"/admin/agents/bot/keys/{key_id}/revoke", data={"csrf_token": csrf})
            assert revoked.status_code == 303 and revoked.headers["location"] == "/admin/agents/bot?done=key-revoked"
            assert "Key revoked" in browser.get(revoked.headers["location"]).text
            assert other.get("/v1/tools").status_code == 401
        assert agent.get("/v1/tools").status_code == 200
        assert not KEY.search(browser.get("/admin/agents/bot").text)

        (grant_id,) = re.findall(r'action="/admin/agents/bot/grants/(\d+)/revoke"', page)
        removed = browser.post(f"/admin/agents/bot/grants/{grant_id}/revoke", headers=htmx(csrf))
        assert removed.status_code == 200 and "Grant revoked" in removed.text
        assert agent.get("/v1/tools").json()["tools"] == []
        again = browser.post(f"/admin/agents/bot/grants/{grant_id}/revoke", headers=htmx(csrf))
        assert again.status_code == 404 and "has no grant" in again.text

        disabled = browser.post("/admin/agents/bot/disable", data={"csrf_token": csrf})
        assert disabled.status_code == 303
        shown = browser.get(disabled.headers["location"]).text
        assert "Agent disabled" in shown and '<span class="badge status-revoked">disabled</span>' in shown
        assert 'id="key-form"' not in shown and 'id="grant-form"' not in shown
        assert agent.get("/v1/tools").status_code == 401
        assert "status-revoked" in _roster_row(browser.get("/admin/").text, "bot")


def test_connections_show_their_health_and_are_revoked_from_the_page(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    connected = _connection(hub, "crm")
    with signed_in(hub) as browser, hub.agent(key) as agent:
        csrf = csrf_of(browser)
        row = browser.get("/admin/").text.split('<th scope="row">crm')[1].split("</tr>")[0]
        assert '<span class="badge status-active">active</span>' in row
        assert re.search(r'<time datetime="[^"]+">in \d+ min</time>', row)  # the token's expiry, relative …
        assert _iso(connected["expires_at"])[:16].replace("T", " ") + " UTC" in row  # … and absolute
        assert f'<time datetime="{_iso(connected["last_refresh_at"])}">just now</time>' in row
        assert 'name="scopes" value="hubspot:crm.contacts.read"' in row and "Reconnect crm" in row

        # A refresh forced at the provider shows as the connection's last refresh.
        hubspot.control("expire-tokens")
        assert agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}}).status_code == 200
        refreshed = _connection(hub, "crm")
        assert refreshed["last_refresh_at"] > connected["last_refresh_at"] and refreshed["last_error"] is None
        section = browser.get("/admin/sections/connections", headers=htmx(csrf)).text
        assert f'datetime="{_iso(refreshed["last_refresh_at"])}"' in section

        assert browser.post("/admin/connections/crm/revoke").status_code == 403
        revoked = browser.post("/admin/connections/crm/revoke", headers=htmx(csrf))
        assert revoked.status_code == 200 and "Connection revoked" in revoked.text
        row = revoked.text.split('<th scope="row">crm')[1].split("</tr>")[0]
        assert '<span class="badge status-revoked">revoked</span>' in row and "reconnecting brings it back" in row
        assert _connection(hub, "crm")["status"] == "revoked"
        assert agent.get("/v1/tools").json()["tools"] == []
