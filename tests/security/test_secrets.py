"""No secret in plaintext anywhere the hub leaves data, after walking every path that handles one: an OAuth
connect, calls, a token the provider expired and the refresh that follows, refusals of every kind, a held call
approved through a one-time link, a flow block, explain, an API-key connection, admin sign-in and sign-out, keys
made and revoked, a connection revoked at the provider. Scanned: the database (files and WAL, or a pg_dump), the
data directory, the hub's DEBUG log with its access log, the audit export, /metrics, and every error body the
hub sent to this suite's clients."""

from tests.admin.page import csrf_of, login_link
from tests.security.leaks import no_secret_anywhere
from tests.security.stack import Stack

_GENERAL = "C0GENERAL1"
_SEARCH = "/v1/tools/hubspot_contacts_search/call"


def _walk(stack: Stack) -> None:
    hub = stack.hub
    assert hub.connect("hubspot", "sec-crm", "crm.contacts.read,crm.contacts.write").status_code == 303
    key = hub.create_agent("sec-agent")
    hub.grant("sec-agent", "sec-crm", "crm.contacts.read")
    hub.grant("sec-agent", "sec-crm", "crm.contacts.write", {"approval": "always"})
    hub.grant("sec-agent", "chat", "messaging.chat.send", {"channels": [_GENERAL]})
    with hub.admin() as admin:
        spare = admin.post("/admin/api/agents/sec-agent/keys", json={}).json()["key"]
        stack.secrets.add(spare)
        api_key = "sk_test_" + "S" * 30
        stack.secrets.add(api_key)
        connected = admin.post(
            "/admin/api/connections",
            json={"provider": "stripe", "name": "sec-pay", "api_key": api_key, "scopes": ["payments.customers.read"]},
        )
        assert connected.status_code == 201, connected.text
        assert api_key not in connected.text

    with hub.agent(key) as agent:
        # Calls, and a contact's email fingerprinted for the flow rule.
        found = agent.post(_SEARCH, json={"arguments": {"query": "ada"}})
        assert found.status_code == 200, found.text
        email = found.json()["result"]["contacts"][0]["email"]
        # The provider expires the token: the next call refreshes it.
        stack.hubspot.control("expire-tokens")
        assert agent.post(_SEARCH, json={"arguments": {"limit": 2}}).status_code == 200
        # Refusals of every kind, each an error body the scan reads.
        refusals = {
            "/v1/tools/slack_messages_post/call": {"channel": _GENERAL, "text": f"write to {email}"},  # flow
            "/v1/tools/hubspot_owners_list/call": {},  # not granted
            "/v1/tools/hubspot_contacts_get/call": {"contact_id": "x; drop"},  # invalid
            "/v1/tools/hubspot_nothing/call": {},  # unknown
        }
        for path, arguments in refusals.items():
            assert agent.post(path, json={"arguments": arguments}).status_code in (403, 404, 422)
        assert agent.post(_SEARCH, content=b"{broken").status_code == 400
        # A held call, approved through a one-time link.
        held = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "sec@example.com"}})
        assert held.status_code == 202, held.text
        call_id = held.json()["call_id"]
    with hub.admin() as admin:
        explained = admin.post(
            "/admin/api/explain",
            json={
                "agent": "sec-agent",
                "tool": "slack_messages_post",
                "arguments": {"channel": _GENERAL, "text": email},
            },
        )
        assert explained.status_code == 200 and explained.json()["outcome"] == "deny", explained.text
        link = admin.post(f"/admin/api/approvals/{call_id}/link", json={"approver": "sam@example.com"}).json()["url"]
    link_token = link.rsplit("/", 1)[1]
    stack.secrets.add(link_token)
    with hub.client() as approver:
        assert approver.get(link).status_code == 200
        assert approver.post(link, data={"decision": "approve"}).status_code == 200
    with hub.agent(key) as agent:
        outcome = agent.get(f"/v1/calls/{call_id}", params={"wait": 20})
        assert outcome.status_code == 200, outcome.text
        # Keys revoked, then presented.
        with hub.admin() as admin:
            keys = admin.get("/admin/api/agents/sec-agent").json()["keys"]
            assert admin.delete(f"/admin/api/agents/sec-agent/keys/{keys[-1]['id']}").status_code == 204
    with hub.agent(spare) as revoked:
        assert revoked.get("/v1/tools").status_code == 401

    # An admin signs in with a link, uses the page, and signs out.
    link_url = login_link(hub)
    stack.secrets.add(link_url.rsplit("=", 1)[1])
    with hub.client() as browser:
        assert browser.get(link_url).status_code == 303
        stack.secrets.add(browser.cookies["sb_admin"])
        csrf = csrf_of(browser)
        assert browser.get("/admin/activity").status_code == 200
        assert browser.post("/admin/logout", data={"csrf_token": csrf}).status_code == 200
    # Connections revoked, at the provider too.
    with hub.admin() as admin:
        for name in ("sec-crm", "sec-pay"):
            assert admin.delete(f"/admin/api/connections/{name}").status_code == 204


def test_no_secret_in_the_database_logs_audit_export_metrics_or_error_bodies(stack: Stack) -> None:
    _walk(stack)
    exported = stack.hub.cli("audit", "export")
    assert exported.returncode == 0, exported.stderr
    issued = {*stack.hubspot.issued_tokens(), *stack.slack.issued_tokens()}
    assert len(issued) >= 6  # every connect's access and refresh tokens, and the refreshed one
    looked_for = no_secret_anywhere(stack.hub, {*issued, *stack.secrets}, audit_export=exported.stdout)
    assert looked_for >= 15
