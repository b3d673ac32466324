"""Approvals, flow rules, the untrusted-session policy and Explain on the admin page, checked through the
agent API and the admin API. Every form is also tried without its CSRF token."""

import re
from typing import Any

import httpx

from tests.admin.page import csrf_of, htmx, signed_in
from tests.harness import Hub

# One HubSpot search, with markup in it: the page must show it escaped.
SEARCH = {"query": "<b>ada</b>", "limit": 5}


def _held_search(hub: Hub) -> httpx.Client:
    """An agent `bot` whose every contact search waits for a human."""
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read", {"approval": "always"})
    return hub.agent(key)


def _hold(agent: httpx.Client) -> str:
    held = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": SEARCH})
    assert held.status_code == 202, held.text
    call_id: str = held.json()["call_id"]
    return call_id


def _approval(hub: Hub, call_id: str) -> dict[str, Any]:
    with hub.admin() as admin:
        found: dict[str, Any] = admin.get(f"/admin/api/approvals/{call_id}").json()
        return found


def _agent(hub: Hub, name: str) -> dict[str, Any]:
    with hub.admin() as admin:
        found: dict[str, Any] = admin.get(f"/admin/api/agents/{name}").json()
        return found


def _badge(text: str) -> str:
    return text.split('id="approvals-badge"')[1].split("</a>")[0]


def test_held_calls_are_approved_and_denied_once_from_the_page(hub: Hub) -> None:
    with _held_search(hub) as agent, signed_in(hub) as browser:
        csrf = csrf_of(browser)
        empty = browser.get("/admin/").text
        section = empty.split('id="approvals"')[1]
        assert "No call is waiting for approval" in section
        assert '{"approval": "always"}' in section and "untrusted content" in section  # what puts calls here
        assert "badge count" not in _badge(empty)

        first, second = _hold(agent), _hold(agent)
        page = browser.get("/admin/").text
        assert '<span class="badge count">2<span class="visually-hidden"> waiting</span>' in _badge(page)
        queue = page.split('id="approvals"')[1]
        assert first in queue and second in queue and "hubspot_contacts_search" in queue
        assert "&#34;query&#34;: &#34;&lt;b&gt;ada&lt;/b&gt;&#34;" in queue and "<b>ada" not in page  # exact, escaped
        assert "approval" in queue.split(first)[1]  # why it waits: the grant's approval constraint

        # Without the CSRF token nothing is decided.
        assert browser.post(f"/admin/approvals/{first}/approve").status_code == 403
        assert _approval(hub, first)["status"] == "pending"

        approved = browser.post(f"/admin/approvals/{first}/approve", data={"csrf_token": csrf})
        assert approved.status_code == 303 and approved.headers["location"] == "/admin/?done=approved#approvals"
        assert "Approved: the call runs now" in browser.get(approved.headers["location"]).text
        done = agent.get(f"/v1/calls/{first}", params={"wait": 30})
        assert done.status_code == 200 and done.json()["status"] == "done", done.text

        # A second decision of the same call: said plainly, with or without htmx, never a 500.
        again = browser.post(f"/admin/approvals/{first}/deny", headers=htmx(csrf))
        assert again.status_code == 409 and again.text.lstrip().startswith('<section id="approvals"')
        assert "no longer pending" in again.text and 'id="approvals-error"' in again.text
        plain = browser.post(f"/admin/approvals/{first}/approve", data={"csrf_token": csrf})
        assert plain.status_code == 409 and "That did not work" in plain.text and "<html" in plain.text
        assert _approval(hub, first)["decided_by"] == "admin (admin page)"

        denied = browser.post(f"/admin/approvals/{second}/deny", headers=htmx(csrf))
        assert denied.status_code == 200 and "Denied: the call will not run" in denied.text
        assert '<span id="approvals-badge" hx-swap-oob="true"></span>' in denied.text  # the nav count, now none
        refused = agent.get(f"/v1/calls/{second}", params={"wait": 5})
        assert refused.status_code == 403 and refused.json()["type"] == "approval_denied"

        history = browser.get("/admin/").text.split('id="decided-h"')[1]
        assert history.count("admin (admin page)") == 2
        assert 'approval-denied">denied' in history and re.search(r'approval-(approved|running|done)"', history)
        assert "No call is waiting for approval" in browser.get("/admin/sections/approvals", headers=htmx(csrf)).text
        missing = browser.post("/admin/approvals/no-such-call/approve", headers=htmx(csrf))
        assert missing.status_code == 404 and "no approval" in missing.text


def test_flow_rules_and_the_untrusted_policy_are_set_on_the_agent_page(hub: Hub) -> None:
    hub.create_agent("bot")
    rule = {"label": "pii.email", "target": "messaging.chat.send"}
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        card = browser.get("/admin/agents/bot").text.split('id="flow-rules"')[1]
        assert '<option value="pii">' in card and '<option value="slack_messages_post">' in card
        flow_form = card.split('id="flow-form-bot"')[1].split("</form>")[0]
        assert 'value="hubspot_contacts_search"' not in flow_form  # it sends nothing on
        assert 'id="untrusted-bot-approve" name="policy" value="approve" checked' in card

        assert browser.post("/admin/agents/bot/flow-rules", data=rule).status_code == 403
        assert browser.post("/admin/agents/bot/untrusted-policy", data={"policy": "refuse"}).status_code == 403
        assert _agent(hub, "bot")["flow_rules"] == [] and _agent(hub, "bot")["untrusted_policy"] == "approve"

        added = browser.post("/admin/agents/bot/flow-rules", data=rule, headers=htmx(csrf))
        assert added.status_code == 200 and "Flow rule saved" in added.text
        assert added.text.lstrip().startswith('<section id="agent" ')
        (saved,) = _agent(hub, "bot")["flow_rules"]
        assert (saved["label"], saved["target"]) == ("pii.email", "messaging.chat.send")

        wrong = {"label": "pii", "target": "hubspot_contacts_search"}
        bad = browser.post("/admin/agents/bot/flow-rules", data=wrong, headers=htmx(csrf))
        assert bad.status_code == 422 and 'id="flow-form-bot-error"' in bad.text and "sends nothing on" in bad.text
        assert '<option value="pii" selected>' in bad.text  # what was chosen is kept
        assert len(_agent(hub, "bot")["flow_rules"]) == 1

        removed = browser.post(f"/admin/agents/bot/flow-rules/{saved['id']}/remove", data={"csrf_token": csrf})
        assert removed.status_code == 303 and removed.headers["location"] == "/admin/agents/bot?done=flow-rule-removed"
        assert _agent(hub, "bot")["flow_rules"] == []
        gone = browser.post(f"/admin/agents/bot/flow-rules/{saved['id']}/remove", headers=htmx(csrf))
        assert gone.status_code == 404 and "has no flow rule" in gone.text

        refuse = browser.post("/admin/agents/bot/untrusted-policy", data={"policy": "refuse", "csrf_token": csrf})
        assert refuse.status_code == 303 and _agent(hub, "bot")["untrusted_policy"] == "refuse"
        after = browser.get(refuse.headers["location"]).text
        assert "Untrusted-session policy saved" in after
        assert 'id="untrusted-bot-refuse" name="policy" value="refuse" checked' in after
        junk = browser.post("/admin/agents/bot/untrusted-policy", data={"policy": "maybe"}, headers=htmx(csrf))
        assert junk.status_code == 422 and _agent(hub, "bot")["untrusted_policy"] == "refuse"


def test_explain_shows_the_decision_and_every_rule_that_fired(hub: Hub) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read", {"object_ids": ["101"]})
    asked = {"agent": "bot", "tool": "hubspot_contacts_get", "connection": "", "session": ""}
    other = {**asked, "arguments": '{"contact_id": "202"}'}  # not on the grant's allow-list
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        assert browser.post("/admin/explain", data=other).status_code == 403

        denied = browser.post("/admin/explain", data=other, headers=htmx(csrf))
        assert denied.status_code == 200 and denied.text.lstrip().startswith('<section id="explain"')
        assert 'class="badge outcome-deny">deny' in denied.text and "constraint_violated" in denied.text
        rules = denied.text.split('id="explain-rules-h"')[1]
        assert 'effect-pass">pass' in rules and 'effect-deny">deny' in rules  # the scope passed, the list denied
        assert "<code>scope</code>" in rules and "object_ids" in rules
        assert "&#34;contact_id&#34;: &#34;202&#34;" in denied.text  # the form keeps what was asked

        listed = {**asked, "arguments": '{"contact_id": "101"}', "csrf_token": csrf}
        allowed = browser.post("/admin/explain", data=listed)
        assert allowed.status_code == 200 and "<html" in allowed.text and 'outcome-allow">allow' in allowed.text

        for text, says in (("{oops", "not valid JSON"), ("[1]", "must be a JSON object"), ('{"n": NaN}', "NaN")):
            bad = browser.post("/admin/explain", data={**asked, "arguments": text}, headers=htmx(csrf))
            assert bad.status_code == 422, text
            assert says in bad.text and 'aria-invalid="true"' in bad.text and 'id="explain-form-error"' in bad.text
        stranger = browser.post("/admin/explain", data={**asked, "agent": "nobody"}, headers=htmx(csrf))
        assert stranger.status_code == 404 and "no active agent" in stranger.text
        wrong_args = browser.post("/admin/explain", data={**asked, "arguments": '{"nope": 1}'}, headers=htmx(csrf))
        assert wrong_args.status_code == 200 and 'outcome-deny">deny' in wrong_args.text
