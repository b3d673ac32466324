"""CSRF on every admin form and every unsafe admin API route, found from the app's own route table so that a
form added later is covered without touching this file; and session fixation.

Each form is posted with a signed-in session's cookie and fields that would act, but with no CSRF token, with
a garbage one, and with the valid token of another session: each is 403, and nothing changed."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from hub.app import create_app
from hub.db import migrate
from hub.settings import Settings
from tests.security.stack import Stack

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_MODEL = "csrf-model"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with its parameters, as declared: /admin/agents/{name}/keys/{key_id}/revoke


@pytest.fixture(scope="module")
def unsafe_admin_routes(tmp_path_factory: pytest.TempPathFactory) -> list[Route]:
    """Every unsafe method of every route under /admin (page and API), read off an app built in process."""
    tmp = tmp_path_factory.mktemp("routes")
    url = f"sqlite:///{tmp / 'routes.db'}"
    migrate(url)
    app = create_app(Settings(database_url=url, data_dir=tmp))
    try:
        routes = [
            Route(method, context.path)
            for context in iter_route_contexts(app.routes)
            if context.path and context.path.startswith("/admin/")
            for method in sorted(_UNSAFE & set(context.methods or ()))
        ]
    finally:
        app.state.hub.db.dispose()
    forms = [r for r in routes if not r.path.startswith("/admin/api/")]
    assert len(forms) >= 20 and len(routes) - len(forms) >= 15, routes
    return routes


@dataclass(frozen=True)
class Targets:
    """Real objects for every path parameter, so that a form that skipped the check would act on them."""

    agent: str
    connection: str
    key_id: int
    grant_id: int
    rule_id: int
    call_id: str

    def fill(self, path: str) -> str:
        name = self.connection if path.startswith("/admin/connections/") else self.agent
        values = {
            "name": name,
            "key_id": self.key_id,
            "grant_id": self.grant_id,
            "rule_id": self.rule_id,
            "call_id": self.call_id,
            "model:path": _MODEL,
        }
        filled = re.sub(r"\{([^}]+)\}", lambda m: str(values[m.group(1)]), path)
        return filled

    def form(self) -> dict[str, str]:
        """Fields that the forms take, with values that would be accepted."""
        return {
            "name": "csrf-made",
            "agent": self.agent,
            "connection": "crm",
            "provider": "stripe",
            "api_key": "sk_test_" + "C" * 24,
            "scopes": "stripe:payments.customers.read",
            "scope": "crm.contacts.read",
            "constraints": "{}",
            "label": "pii.phone",
            "target": "messaging.chat.send",
            "policy": "refuse",
            "untrusted_policy": "refuse",
            "description": "changed by a forged form",
            "role": "forged",
            "expires_on": "",
            "decision": "approve",
            "tool": "hubspot_contacts_search",
            "arguments": "{}",
            "session": "",
            "model": "csrf-forged",
            "input_per_mtok": "1",
            "output_per_mtok": "1",
            "period": "day",
        }


@pytest.fixture(scope="module")
def targets(stack: Stack) -> Iterator[Targets]:
    hub = stack.hub
    key = hub.create_agent("csrf-agent")
    hub.grant("csrf-agent", "crm", "crm.contacts.write", {"approval": "always"})
    with hub.admin() as admin:
        api_key = "sk_test_" + "K" * 24
        stack.secrets.add(api_key)
        connected = admin.post(
            "/admin/api/connections",
            json={"provider": "stripe", "name": "csrf-conn", "api_key": api_key, "scopes": ["payments.customers.read"]},
        )
        assert connected.status_code == 201, connected.text
        rule = admin.post(
            "/admin/api/agents/csrf-agent/flow-rules", json={"label": "pii.email", "target": "messaging.chat.send"}
        )
        assert rule.status_code == 201, rule.text
        price = admin.put(f"/admin/api/prices/{_MODEL}", json={"input_per_mtok": 1.0, "output_per_mtok": 2.0})
        assert price.status_code == 201, price.text
        agent = admin.get("/admin/api/agents/csrf-agent").json()
    with hub.agent(key) as caller:
        held = caller.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "c@example.com"}})
    assert held.status_code == 202, held.text
    yield Targets(
        "csrf-agent", "csrf-conn", agent["keys"][0]["id"], agent["grants"][0]["id"], rule.json()["id"],
        held.json()["call_id"],
    )  # fmt: skip


def _snapshot(stack: Stack) -> dict[str, Any]:
    with stack.hub.admin() as admin:
        return {
            "agents": admin.get("/admin/api/agents").json(),
            "connections": sorted((c["name"], c["status"]) for c in admin.get("/admin/api/connections").json()),
            "grants": admin.get("/admin/api/grants").json(),
            "approvals": admin.get("/admin/api/approvals", params={"status": "all"}).json(),
            "prices": admin.get("/admin/api/prices").json(),
        }


def test_every_admin_form_and_unsafe_admin_api_route_needs_the_csrf_token(
    stack: Stack, unsafe_admin_routes: list[Route], targets: Targets
) -> None:
    before = _snapshot(stack)
    tried = 0
    with stack.hub.client() as browser, stack.hub.client() as other:
        csrf = stack.sign_in(browser)
        other_csrf = stack.sign_in(other)  # a real token, of another session
        for route in unsafe_admin_routes:
            path = targets.fill(route.path)
            for token in (None, "0" * 64, other_csrf):
                if route.path.startswith("/admin/api/"):
                    headers = {"X-CSRF-Token": token} if token else {}
                    answer = browser.request(route.method, path, json={"approve": True}, headers=headers)
                else:
                    form = {**targets.form(), **({"csrf_token": token} if token else {})}
                    answer = browser.request(route.method, path, data=form)
                assert answer.status_code == 403, (route, token, answer.status_code, answer.text[:300])
                assert "CSRF" in answer.text, (route, answer.text[:300])
                tried += 1
            # htmx sends the token as a header: a wrong one there fails even beside a right one in the form.
            if not route.path.startswith("/admin/api/"):
                forged = browser.request(
                    route.method,
                    path,
                    data={**targets.form(), "csrf_token": csrf},
                    headers={"HX-Request": "true", "X-CSRF-Token": other_csrf},
                )
                assert forged.status_code == 403, (route, forged.text[:300])
        # Starting a connection is a GET, and needs the token too when a page session asks.
        started = browser.get("/connect/hubspot", params={"name": "csrf-made", "scopes": "crm.contacts.read"})
        assert started.status_code == 403 and "location" not in started.headers
        # The session still works, and the token it holds is the one that is accepted.
        assert browser.get("/admin/").status_code == 200
    assert tried == 3 * len(unsafe_admin_routes)
    assert _snapshot(stack) == before


def test_a_cookie_planted_before_sign_in_never_becomes_a_session(stack: Stack) -> None:
    hub = stack.hub
    planted = {"Cookie": "sb_admin=sbs_" + "P" * 43}  # what an attacker set in the admin's browser
    with hub.client() as browser:
        assert browser.get("/admin/", headers=planted).status_code == 401
        signed = browser.get(stack.login_link(), headers=planted)
        assert signed.status_code == 303
        fresh = signed.cookies["sb_admin"]
        assert fresh.startswith("sbs_") and fresh not in planted["Cookie"]
        stack.secrets.add(fresh)
    with hub.client() as attacker:
        # The attacker who planted the cookie holds nothing: not a session, so no page, form or API.
        assert attacker.get("/admin/", headers=planted).status_code == 401
        assert attacker.post("/admin/agents", data={"name": "csrf-fixated"}, headers=planted).status_code == 401
        assert attacker.get("/admin/api/agents", headers=planted).status_code == 401
        # While the session the sign-in made works.
        assert attacker.get("/admin/", headers={"Cookie": f"sb_admin={fresh}"}).status_code == 200
    with hub.admin() as admin:
        assert admin.get("/admin/api/agents/csrf-fixated").status_code == 404


def test_routes_are_found_from_the_app(unsafe_admin_routes: list[Route]) -> None:
    # What the CSRF test covers, so that a missing route is visible here rather than silently skipped.
    paths = {(r.method, r.path) for r in unsafe_admin_routes}
    for expected in (
        ("POST", "/admin/logout"),
        ("POST", "/admin/agents/{name}/keys/{key_id}/revoke"),
        ("POST", "/admin/connections/{name}/revoke"),
        ("POST", "/admin/approvals/{call_id}/approve"),
        ("DELETE", "/admin/api/grants/{grant_id}"),
        ("PUT", "/admin/api/prices/{model:path}"),
    ):
        assert expected in paths, expected
