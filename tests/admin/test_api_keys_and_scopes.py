"""Connecting with a pasted API key on the admin page, and the provider scopes a connection asked for against
those it was granted. One hub (HubSpot and Stripe sandboxes) serves the whole module, on each database."""

import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.admin.page import csrf_of, htmx, signed_in
from tests.harness import Hub, Sandbox, postgres_database, run_hub, run_sandbox


# Module-scoped stand-ins for the conftest fixtures of the same names: starting a hub is the slow part.
@pytest.fixture(scope="module")
def hubspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("hubspot", tmp_path_factory.mktemp("hubspot")) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def stripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with run_sandbox("stripe", tmp_path_factory.mktemp("stripe")) as sandbox:
        yield sandbox


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, hubspot: Sandbox, stripe: Sandbox
) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("SWITCHBOARD_") and n != "SWITCHBOARD_TEST_PG"]:
            env.delenv(name)
        with (
            _database(request.param, tmp) as url,
            run_hub(tmp, url, providers={"hubspot": hubspot, "stripe": stripe}) as running,
        ):
            yield running


def _database(kind: str, tmp: Path) -> AbstractContextManager[str]:
    return postgres_database() if kind == "postgresql" else nullcontext(f"sqlite:///{tmp / 'switchboard.db'}")


def _mint(stripe: Sandbox, permissions: list[str]) -> str:
    """A restricted key the Stripe sandbox honours (rk_test_…), holding `permissions`."""
    answer = httpx.post(f"{stripe.url}/_control/api-keys", json={"permissions": permissions})
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key


def _connections(hub: Hub) -> dict[str, dict[str, object]]:
    with hub.admin() as admin:
        return {c["name"]: c for c in admin.get("/admin/api/connections").json()}


def _form(page: str, form_id: str) -> str:
    return page.split(f'<form id="{form_id}"')[1].split("</form>")[0]


def _row(page: str, name: str) -> str:
    return page.split(f'<th scope="row">{name}')[1].split("</tr>")[0]


def _assert_never_shown(browser: httpx.Client, csrf: str, *keys: str) -> None:
    """Nothing the admin page or the admin API answers carries any of `keys`."""
    answers = [
        browser.get("/admin/"),
        browser.get("/admin/?connected=billing"),
        *(browser.get(f"/admin/sections/{s}", headers=htmx(csrf)) for s in ("connections", "agents", "audit")),
        browser.get("/admin/grant-scopes", params={"connection": "billing"}, headers={"HX-Request": "true"}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not [k for k in keys if k in answer.text]


def test_the_api_key_form_offers_only_providers_with_an_api_key_mode(hub: Hub) -> None:
    with signed_in(hub) as browser:
        page = browser.get("/admin/").text
    form = _form(page, "apikey-form")
    assert 'action="/admin/connections"' in form and 'name="csrf_token"' in form
    assert '<option value="stripe">Stripe</option>' in form and 'value="hubspot"' not in form
    assert 'value="stripe:payments.charges.read"' in form and "hubspot:" not in form
    assert '<input id="apikey-key" name="api_key" type="password"' in form and 'autocomplete="off"' in form
    assert "rk_live_" in form and "grants the whole account" in form  # the manifest's hint
    # HubSpot has no API-key mode: it is offered through OAuth only, beside Stripe Connect.
    oauth = _form(page, "connect-form")
    assert 'value="hubspot"' in oauth and 'value="stripe"' in oauth


def test_a_refused_key_is_shown_nowhere_and_makes_no_connection(hub: Hub, stripe: Sandbox) -> None:
    wrong_kind = "pk_test_" + secrets.token_hex(12)  # a publishable key: not what the pattern allows
    good = _mint(stripe, ["rak_balance_read"])
    form = {"provider": "stripe", "name": "pay-key", "scopes": ["stripe:payments.charges.read"], "api_key": wrong_kind}
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        assert browser.post("/admin/connections", data=form).status_code == 403  # no CSRF token

        bad = browser.post("/admin/connections", data={**form, "csrf_token": csrf})
        assert bad.status_code == 422 and wrong_kind not in bad.text
        kept = _form(bad.text, "apikey-form")
        assert 'id="apikey-form-error"' in kept and "not a valid stripe API key" in kept and "rk_live_" in kept
        assert 'value="pay-key"' in kept and 'value="stripe:payments.charges.read" checked' in kept
        assert '<input id="apikey-key" name="api_key" type="password"' in kept
        assert 'value="pay-key"' not in _form(bad.text, "connect-form")  # kept in its own form only
        assert 'value="pay-key"' not in _form(bad.text, "create-agent")

        refusals: list[tuple[dict[str, Any], int, str]] = [
            ({"scopes": ["stripe:payments.nonsense"], "api_key": good}, 422, "not payments.nonsense"),
            ({"scopes": [], "api_key": good}, 422, "(none chosen)"),
            ({"scopes": ["hubspot:crm.contacts.read"], "api_key": good}, 422, "a provider other than stripe"),
            ({"name": "Not Valid", "api_key": good}, 422, "connection name must be"),
            ({"api_key": "   "}, 422, "paste the API key"),
            ({"api_key": "rk_test_" + "a" * 2000}, 422, "over 1000 characters"),
            ({"provider": "hubspot", "scopes": ["hubspot:crm.contacts.read"], "api_key": good}, 422, "through OAuth"),
            ({"provider": "nope", "scopes": [], "api_key": good}, 404, "unknown provider"),
        ]
        for change, status, says in refusals:
            answer = browser.post("/admin/connections", data={**form, **change}, headers=htmx(csrf))
            assert answer.status_code == status, (change, answer.text)
            assert answer.text.lstrip().startswith('<section id="connections"') and "<html" not in answer.text
            assert says in answer.text and 'id="apikey-form-error"' in answer.text
            assert good not in answer.text and wrong_kind not in answer.text

        _assert_never_shown(browser, csrf, wrong_kind, good)
    assert "pay-key" not in _connections(hub)
    log = hub.process.log_path.read_text()
    assert wrong_kind not in log and good not in log


def test_a_pasted_key_connects_and_an_agent_calls_stripe_through_it(hub: Hub, stripe: Sandbox) -> None:
    # The first key lacks the balance permission; the second, pasted over it, has it.
    narrow, enough = _mint(stripe, ["rak_charge_read"]), _mint(stripe, ["rak_charge_read", "rak_balance_read"])
    form = {"provider": "stripe", "name": "billing", "scopes": ["stripe:payments.charges.read"], "api_key": narrow}
    key = hub.create_agent("billing-bot")
    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        made = browser.post("/admin/connections", data=form, headers=htmx(csrf))
        assert made.status_code == 201 and narrow not in made.text
        connections, agents = made.text.split('<section id="agents"')
        assert "Connected <strong>billing</strong>" in connections
        row = _row(connections, "billing")
        assert '<span class="badge status-active">active</span>' in row and "payments.charges.read" in row
        assert '<td><span class="credential">API key</span></td>' in row  # in place of a token expiry
        assert "permissions set on the key" in row and "Reconnect" not in row
        assert 'hx-swap-oob="true"' in agents and '<option value="billing"' in agents  # the grant form offers it

        grant = {"agent": "billing-bot", "connection": "billing", "scope": "payments.charges.read"}
        granted = browser.post("/admin/grants", data={**grant, "csrf_token": csrf})
        assert granted.status_code == 303
        with hub.agent(key) as agent:
            denied = agent.post("/v1/tools/stripe_balance_get/call", json={"arguments": {}})
            assert denied.status_code == 403 and denied.json()["type"] == "scope_denied"  # the key's own limit

            # Without htmx: Post/Redirect/Get. The same name takes the new key in place of the old.
            replaced = browser.post("/admin/connections", data={**form, "api_key": enough, "csrf_token": csrf})
            assert replaced.status_code == 303
            assert replaced.headers["location"] == "/admin/?connected=billing#connections"
            assert "Connected <strong>billing</strong>" in browser.get(replaced.headers["location"]).text

            balance = agent.post("/v1/tools/stripe_balance_get/call", json={"arguments": {}})
            assert balance.status_code == 200, balance.text
            assert balance.json()["result"]["available"]
            charges = agent.post("/v1/tools/stripe_charges_list/call", json={"arguments": {}, "connection": "billing"})
            assert charges.status_code == 200, charges.text

        assert _connections(hub)["billing"]["status"] == "active"
        _assert_never_shown(browser, csrf, narrow, enough)
        with hub.admin() as admin:
            assert narrow not in admin.get("/admin/api/connections").text
    log = hub.process.log_path.read_text()
    assert narrow not in log and enough not in log


def _connect_stripe(hub: Hub, name: str, scopes: str, *, approve: str) -> None:
    """Stripe Connect OAuth where the account holder approves `approve` whatever was asked for."""
    with hub.admin() as admin:
        start = admin.get("/connect/stripe", params={"name": name, "scopes": scopes})
    assert start.status_code == 302, start.text
    authorize = urlsplit(start.headers["location"])
    with httpx.Client(timeout=30) as browser:
        consent = {**dict(parse_qsl(authorize.query)), "scope": approve, "decision": "approve"}
        back = browser.post(f"{authorize.scheme}://{authorize.netloc}{authorize.path}", data=consent)
        assert back.status_code == 302, back.text
        done = browser.get(back.headers["location"])
    assert done.status_code == 303, done.text


def test_provider_scopes_asked_for_and_granted_show_with_any_difference_flagged(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read,crm.deals.read").status_code == 303
    # Asked for read_write (a write scope), granted only read_only: the writes will fail at Stripe.
    _connect_stripe(hub, "pay-fewer", "payments.customers.read,payments.customers.write", approve="read_only")
    # Asked for read_only, granted read_write: more than asked, and read_write includes read_only.
    _connect_stripe(hub, "pay-more", "payments.customers.read", approve="read_write")
    with signed_in(hub) as browser:
        page = browser.get("/admin/").text
    assert '<th scope="col">Provider scopes</th>' in page

    crm = _row(page, "crm")
    assert "crm.objects.contacts.read" in crm and "crm.objects.deals.read" in crm and "granted as asked" in crm
    assert "scope-warning" not in crm and "scopes missing" not in crm

    fewer = _row(page, "pay-fewer")
    asked, granted = fewer.split("<dt>Asked</dt>")[1].split("<dt>Granted</dt>")
    assert "<li>read_write</li>" in asked and "<li>read_only</li>" in granted.split("</dl>")[0]
    warning = fewer.split('class="scope-warning"')[1].split("</p>")[0]
    assert "Not granted:</strong> read_write" in warning and "scope_denied" in warning
    assert "payments.customers.write" in warning and "payments.customers.read" not in warning
    assert "scopes missing" in fewer and "granted as asked" not in fewer and "Also granted" not in fewer

    more = _row(page, "pay-more")
    assert "<li>read_only</li>" in more.split("<dt>Granted</dt>")[0]
    assert "Also granted, not asked for:</strong> read_write" in more
    assert "scope-warning" not in more and "scopes missing" not in more


def test_a_provider_without_oauth_credentials_still_connects_with_a_key(tmp_path: Path, stripe: Sandbox) -> None:
    # No client credentials at all: OAuth is not offered, yet a pasted key needs no client registration.
    api = {"SWITCHBOARD_STRIPE_API_BASE": stripe.url}
    with run_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", providers={}, extra_env=api) as bare:
        key = _mint(stripe, ["rak_balance_read"])
        agent_key = bare.create_agent("bot")
        with signed_in(bare) as browser:
            page = browser.get("/admin/").text
            assert 'id="connect-form"' not in page and "No provider is configured for OAuth" in page
            assert '<option value="stripe">Stripe</option>' in _form(page, "apikey-form")
            form = {"provider": "stripe", "name": "pay", "scopes": ["stripe:payments.charges.read"], "api_key": key}
            made = browser.post("/admin/connections", data={**form, "csrf_token": csrf_of(browser)})
            assert made.status_code == 303 and key not in browser.get(made.headers["location"]).text
        bare.grant("bot", "pay", "payments.charges.read")
        with bare.agent(agent_key) as agent:
            balance = agent.post("/v1/tools/stripe_balance_get/call", json={"arguments": {}})
            assert balance.status_code == 200, balance.text
        assert key not in bare.process.log_path.read_text()
