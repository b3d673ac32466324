"""Every id in an admin URL names its object under the right parent or nothing: another agent's key, grant or
flow rule addressed through this agent's URL, an unknown approval, an id no row can have — each 404 (or 422 for
an id out of range), never a 500 and never acting on the other object. Through the admin API and the page."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.stack import Stack


@dataclass(frozen=True)
class Owned:
    """What `jay` owns, which `ivy`'s URLs try to reach."""

    key: str
    key_id: int
    grant_id: int
    rule_id: int


@pytest.fixture(scope="module")
def jay(stack: Stack) -> Iterator[Owned]:
    hub = stack.hub
    for name in ("idor-ivy", "idor-jay"):
        key = hub.create_agent(name)
        grant_id = hub.grant(name, "crm", "crm.contacts.read")
        with hub.admin() as admin:
            rule = admin.post(
                f"/admin/api/agents/{name}/flow-rules", json={"label": "pii.email", "target": "messaging.chat.send"}
            )
            assert rule.status_code == 201, rule.text
            agent = admin.get(f"/admin/api/agents/{name}").json()
    yield Owned(key, agent["keys"][0]["id"], grant_id, rule.json()["id"])


def _state(stack: Stack, name: str) -> dict[str, Any]:
    with stack.hub.admin() as admin:
        found: dict[str, Any] = admin.get(f"/admin/api/agents/{name}").json()
    return found


def _not_acted(stack: Stack, jay: Owned, before: dict[str, Any]) -> None:
    assert _state(stack, "idor-jay") == before
    with stack.hub.agent(jay.key) as agent:
        listed = agent.get("/v1/tools")
    assert listed.status_code == 200 and listed.json()["tools"], "jay's key or grant stopped working"


def _problem(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, (answer.request.url, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_admin_api_ids_reach_only_their_own_agents_objects(stack: Stack, jay: Owned) -> None:
    before = _state(stack, "idor-jay")
    with stack.hub.admin() as admin:
        _problem(admin.delete(f"/admin/api/agents/idor-ivy/keys/{jay.key_id}"), 404)
        _problem(admin.delete(f"/admin/api/agents/idor-ivy/flow-rules/{jay.rule_id}"), 404)
        _problem(admin.delete(f"/admin/api/agents/idor-nobody/keys/{jay.key_id}"), 404)
        _problem(admin.delete(f"/admin/api/agents/idor-nobody/flow-rules/{jay.rule_id}"), 404)
        _problem(admin.post("/admin/api/agents/idor-nobody/keys", json={}), 404)
        _problem(admin.patch("/admin/api/agents/idor-nobody", json={"description": "x"}), 404)
        _problem(admin.delete("/admin/api/agents/idor-nobody"), 404)
        _problem(admin.delete("/admin/api/connections/idor-nothing"), 404)
        for path in ("/admin/api/approvals/idor-unknown", "/admin/api/approvals/" + "9" * 500):
            _problem(admin.get(path), 404)
            _problem(admin.post(path, json={"approve": True}), 404)
            _problem(admin.post(f"{path}/link", json={"approver": "someone@example.com"}), 404)
        # An id no row can have: absent (404), or out of range (422) — never a database error.
        for bad in (0, -1, 2**31, 2**63, 2**70):
            status = 422 if bad < 1 or bad >= 2**31 else 404
            _problem(admin.delete(f"/admin/api/grants/{bad}"), status)
            _problem(admin.delete(f"/admin/api/agents/idor-ivy/keys/{bad}"), status)
            _problem(admin.delete(f"/admin/api/agents/idor-ivy/flow-rules/{bad}"), status)
        _problem(admin.delete("/admin/api/grants/1%20OR%201=1"), 422)
        # A call id the audit log knows but no approval holds is not an approval either.
        with stack.hub.agent(jay.key) as agent:
            ran = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert ran.status_code == 200, ran.text
        _problem(admin.post(f"/admin/api/approvals/{ran.json()['call_id']}", json={"approve": True}), 404)
    _not_acted(stack, jay, before)


def test_admin_page_ids_reach_only_their_own_agents_objects(stack: Stack, jay: Owned) -> None:
    before = _state(stack, "idor-jay")
    with stack.hub.client() as browser:
        csrf = {"csrf_token": stack.sign_in(browser)}
        for path in (
            f"/admin/agents/idor-ivy/keys/{jay.key_id}/revoke",
            f"/admin/agents/idor-ivy/grants/{jay.grant_id}/revoke",
            f"/admin/agents/idor-ivy/flow-rules/{jay.rule_id}/remove",
            f"/admin/agents/idor-nobody/grants/{jay.grant_id}/revoke",
        ):
            answer = browser.post(path, data=csrf)
            assert answer.status_code in (404, 422), (path, answer.status_code, answer.text[:300])
            assert re.search(r"no (key|grant|flow rule)|no agent|not found", answer.text, re.IGNORECASE), path
        for bad in (0, 2**31, 2**70):
            for path in (
                f"/admin/agents/idor-ivy/keys/{bad}/revoke",
                f"/admin/agents/idor-ivy/grants/{bad}/revoke",
                f"/admin/agents/idor-ivy/flow-rules/{bad}/remove",
            ):
                answer = browser.post(path, data=csrf)
                assert answer.status_code in (404, 422), (path, answer.status_code, answer.text[:300])
        _problem(browser.get("/admin/api/approvals/idor-unknown"), 404)
    _not_acted(stack, jay, before)
