"""Connecting, seeing and revoking provider accounts on the admin page, and the audit log section."""

from urllib.parse import parse_qs, urlsplit

import httpx

from hub.demo import approve_consent
from tests.admin.page import csrf_of, htmx, signed_in
from tests.harness import Hub, Sandbox


def test_connect_from_the_page_walks_oauth_and_shows_the_connection(hub: Hub, hubspot: Sandbox) -> None:
    form = {"provider": "hubspot", "name": "crm", "scopes": ["hubspot:crm.contacts.read", "hubspot:crm.deals.read"]}
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        page = browser.get("/admin/").text
        assert 'value="hubspot:crm.contacts.write"' in page  # every scope the manifest maps is offered

        refused = browser.post("/admin/connect", data=form)
        assert refused.status_code == 403 and "location" not in refused.headers
        bad = browser.post("/admin/connect", data={**form, "name": "Not Valid", "csrf_token": csrf})
        assert bad.status_code == 422 and 'id="connect-form-error"' in bad.text and 'value="Not Valid"' in bad.text
        assert bad.text.count('value="Not Valid"') == 1  # kept in its own form, not in the other name fields
        none = browser.post("/admin/connect", data={**form, "scopes": [], "csrf_token": csrf})
        assert none.status_code == 422 and "choose at least one scope" in none.text
        alien = browser.post("/admin/connect", data={**form, "scopes": ["slack:crm.contacts.read"], "csrf_token": csrf})
        assert alien.status_code == 422 and "a provider other than hubspot" in alien.text

        started = browser.post("/admin/connect", data={**form, "csrf_token": csrf})
        assert started.status_code == 303
        authorize = started.headers["location"]
        assert authorize.startswith(hubspot.url) and "csrf" not in authorize
        assert parse_qs(urlsplit(authorize).query)["scope"] == ["crm.objects.contacts.read crm.objects.deals.read"]
        with httpx.Client(timeout=30) as consent:
            back = consent.get(approve_consent(consent, authorize))
        assert back.status_code == 303 and back.headers["location"] == "/admin/?connected=crm"

        shown = browser.get(back.headers["location"]).text
        assert "Connected <strong>crm</strong>" in shown
        row = shown.split('<th scope="row">crm')[1].split("</tr>")[0]
        assert '<span class="badge status-active">active</span>' in row
        assert "crm.objects.contacts.read" in row and "crm.objects.deals.read" in row
        assert "granted as asked" in row and "scope-warning" not in row  # requested and granted provider scopes
        assert "<time datetime=" in row  # token expiry and last refresh
        assert "Connected" not in browser.get("/admin/?connected=<i>made-up</i>").text

        scopes = browser.get("/admin/grant-scopes", params={"connection": "crm"}, headers={"HX-Request": "true"})
        assert scopes.status_code == 200 and scopes.text.lstrip().startswith('<select id="grant-scope"')
        assert 'value="crm.deals.read"' in scopes.text and 'value="crm.contacts.write"' not in scopes.text


def test_tool_calls_show_in_the_audit_section_and_revoking_a_connection_stops_them(hub: Hub) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read")
    with hub.agent(key) as agent:
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert found.status_code == 200, found.text
        denied = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "eve@example.com"}})
        assert denied.status_code == 403

    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        audit = browser.get("/admin/sections/audit", headers={"HX-Request": "true"})
        assert audit.status_code == 200 and audit.text.lstrip().startswith('<section id="audit"')
        assert "<html" not in audit.text
        rows = audit.text.split("<tbody>")[1].split("</tr>")
        assert "hubspot_contacts_create" in rows[0] and "decision-deny" in rows[0] and "scope_denied" in rows[0]
        assert "hubspot_contacts_search" in rows[1] and "decision-allow" in rows[1] and "support-bot" in rows[1]
        assert browser.get("/admin/sections/audit").status_code == 303  # without htmx: the whole page
        assert browser.get("/admin/sections/secrets", headers={"HX-Request": "true"}).status_code == 404

        revoked = browser.post("/admin/connections/crm/revoke", headers=htmx(csrf))
        assert revoked.status_code == 200
        connections, agents = revoked.text.split('<section id="agents"')
        assert connections.lstrip().startswith('<section id="connections"') and "Connection revoked" in connections
        assert '<span class="badge status-revoked">revoked</span>' in connections
        assert agents.startswith(' class="section" aria-labelledby="agents-h" hx-swap-oob="true"')
        with hub.agent(key) as agent:
            assert agent.get("/v1/tools").json()["tools"] == []
        again = browser.post("/admin/connections/nope/revoke", data={"csrf_token": csrf})
        assert again.status_code == 404 and "no connection named" in again.text
