"""Agents, keys and grants through the admin page, checked against what agents then see on /v1/tools."""

import re

import httpx

from tests.admin.page import KEY, csrf_of, htmx, signed_in
from tests.harness import Hub


def _tools(hub: Hub, key: str) -> list[str] | int:
    """The agent's tool names, or the status code if it is refused."""
    with hub.agent(key) as agent:
        listed = agent.get("/v1/tools")
    if listed.status_code != 200:
        return listed.status_code
    tools = listed.json()["tools"]
    # Whatever the connector offers, an agent granted only crm.contacts.read sees nothing needing more.
    assert all(set(t["scopes"]) <= {"crm.contacts.read"} for t in tools), tools
    return sorted(t["name"] for t in tools)


def _agents(hub: Hub) -> list[dict[str, object]]:
    with hub.admin() as admin:
        body: list[dict[str, object]] = admin.get("/admin/api/agents").json()
        return body


def test_a_new_key_is_shown_once_and_forms_need_the_csrf_token(hub: Hub) -> None:
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        form = {"name": "support-bot", "description": "<script>alert(1)</script> reads contacts"}
        assert browser.post("/admin/agents", data=form).status_code == 403
        assert browser.post("/admin/agents", data={**form, "csrf_token": "0" * 64}).status_code == 403
        with signed_in(hub) as other_admin:  # a token is bound to its session: another session's is refused
            assert browser.post("/admin/agents", data={**form, "csrf_token": csrf_of(other_admin)}).status_code == 403
        assert _agents(hub) == []

        created = browser.post("/admin/agents", data={**form, "csrf_token": csrf})
        assert created.status_code == 201
        assert "shown only this once" in created.text
        (key,) = set(KEY.findall(created.text))
        hub.secrets.add(key)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in created.text and "<script>alert" not in created.text
        assert _tools(hub, key) == []  # the key works; with no grant it sees no tool

        page = browser.get("/admin/agents/support-bot")
        assert key not in page.text and not KEY.search(page.text)
        assert f"<code>{key[:8]}…</code>" in page.text
        duplicate = browser.post("/admin/agents", data={**form, "csrf_token": csrf})
        assert duplicate.status_code == 409 and "exists" in duplicate.text and not KEY.search(duplicate.text)
        bad_name = browser.post("/admin/agents", data={"name": "Not Valid", "csrf_token": csrf}, headers=htmx(csrf))
        assert bad_name.status_code == 422 and 'id="create-agent-error"' in bad_name.text
        assert 'value="Not Valid"' in bad_name.text  # what was typed is kept

        # A second key on the agent's page, through htmx: a fragment, shown once too.
        second = browser.post("/admin/agents/support-bot/keys", data={"expires_on": "2999-01-01"}, headers=htmx(csrf))
        assert second.status_code == 201 and second.text.lstrip().startswith('<section id="agent" ')
        assert "<html" not in second.text
        (key2,) = set(KEY.findall(second.text))
        hub.secrets.add(key2)
        assert _tools(hub, key2) == []
        past = browser.post("/admin/agents/support-bot/keys", data={"expires_on": "2001-01-01"}, headers=htmx(csrf))
        assert past.status_code == 422 and "future" in past.text

        # Revoking the first key stops it at once; disabling the agent stops the second.
        key_id = next(k["id"] for k in _agents(hub)[0]["keys"] if not k["revoked_at"])  # type: ignore[attr-defined,index]
        revoked = browser.post(f"/admin/agents/support-bot/keys/{key_id}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert revoked.headers["location"] == "/admin/agents/support-bot?done=key-revoked"
        assert "Key revoked" in browser.get(revoked.headers["location"]).text
        assert _tools(hub, key) == 401 and _tools(hub, key2) == []
        disabled = browser.post("/admin/agents/support-bot/disable", headers=htmx(csrf))
        assert disabled.status_code == 200 and "Agent disabled" in disabled.text
        assert _tools(hub, key2) == 401
        missing = browser.post("/admin/agents/nobody/disable", headers=htmx(csrf))
        assert missing.status_code == 404 and "no agent named" in missing.text


def test_grants_made_on_the_page_decide_what_the_agent_sees(hub: Hub) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("support-bot")
    grant = {"agent": "support-bot", "connection": "crm", "scope": "crm.contacts.read"}
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        page = browser.get("/admin/").text
        assert re.search(r'<option value="crm.contacts.read"', page)
        assert 'value="crm.contacts.write"' not in page.split('id="grant-form"')[1]  # not authorised: not offered

        assert browser.post("/admin/grants", data=grant).status_code == 403
        assert _tools(hub, key) == []

        for text, says in (("[1, 2]", "must be a JSON object"), ("{oops", "not valid JSON"), ('{"n": NaN}', "NaN")):
            bad = browser.post("/admin/grants", data={**grant, "constraints": text, "csrf_token": csrf})
            assert bad.status_code == 422, text
            assert says in bad.text and 'aria-invalid="true"' in bad.text
            assert 'id="grant-form-error"' in bad.text and "That did not work" in bad.text  # inline + summary
        assert _tools(hub, key) == []

        unauthorised = browser.post("/admin/grants", data={**grant, "scope": "crm.contacts.write"}, headers=htmx(csrf))
        assert unauthorised.status_code == 409 and "was not authorised" in unauthorised.text
        assert unauthorised.text.lstrip().startswith('<section id="agents"')

        typo = browser.post("/admin/grants", data={**grant, "constraints": '{"max_resluts": 5}'}, headers=htmx(csrf))
        assert typo.status_code == 422 and "max_resluts" in typo.text

        granted = browser.post(
            "/admin/grants",
            data={**grant, "constraints": '{"max_results": 5, "object_ids": ["<b>"]}'},
            headers=htmx(csrf),
        )
        assert granted.status_code == 200 and "Grant saved" in granted.text
        assert "<html" not in granted.text and granted.text.lstrip().startswith('<section id="agents"')
        agent_page = browser.get("/admin/agents/support-bot").text
        assert "&lt;b&gt;" in agent_page and '"max_results": 5' in agent_page.replace("&#34;", '"')
        tools = _tools(hub, key)
        assert isinstance(tools, list) and "hubspot_contacts_search" in tools and "hubspot_contacts_get" in tools

        (grant_id,) = re.findall(r'action="/admin/agents/support-bot/grants/(\d+)/revoke"', agent_page)
        revoked = browser.post(f"/admin/agents/support-bot/grants/{grant_id}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert _tools(hub, key) == []
        gone = browser.post(f"/admin/agents/support-bot/grants/{grant_id}/revoke", headers=htmx(csrf))
        assert gone.status_code == 404 and "no grant" in gone.text


def test_a_wrong_csrf_token_under_htmx_lands_in_the_flash_area(hub: Hub) -> None:
    with signed_in(hub) as browser:
        refused = browser.post("/admin/agents", data={"name": "x"}, headers=htmx("f" * 64))
        assert refused.status_code == 403
        assert refused.headers["HX-Retarget"] == "#flash" and "CSRF" in refused.text and "<html" not in refused.text
    assert _agents(hub) == []
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous:
        assert anonymous.post("/admin/agents", data={"name": "x", "csrf_token": "f" * 64}).status_code == 401
    assert _agents(hub) == []
