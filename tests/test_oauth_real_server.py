"""The hub's OAuth connect and refresh against a real authorization server, not one we wrote: panva's
oidc-provider (tests/peers/oidc_server.mjs) with PKCE required and rotating refresh tokens, on SQLite and
PostgreSQL.

Proves: the hub's authorize request passes a strict server (PKCE S256, exact redirect URI, client_secret_post);
an intercepted code is useless without the verifier only the hub holds; a callback replayed or with a forged
state is refused; the background refresher rotates the refresh token and stores each new one (with rotation, a
reused refresh token would revoke the whole grant, so consecutive successful refreshes prove it); the stored
access token is one the provider's resource server accepts; a grant revoked at the provider ends in
`needs_reauth` after one refused refresh, not a retry loop, and a tool call then answers 409 without reaching
the provider; reconnecting restores the connection.
"""

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.harness import Hub, OidcServer, free_port, oidc_authorize, oidc_hub_env, run_hub, run_oidc_server

SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write"]
# The hub refreshes in the background every second any token that lapses within the hour, i.e. always: each
# refresh rotates the refresh token, so the test sees several rotations in a few seconds.
HUB_ENV = {"SWITCHBOARD_REFRESH_INTERVAL": "1", "SWITCHBOARD_REFRESH_MARGIN": "3600"}


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[tuple[Hub, OidcServer]]:
    port, client_id, client_secret = free_port(), "switchboard-test", secrets.token_urlsafe(24)
    oidc_env = oidc_hub_env(f"http://127.0.0.1:{port}", client_id, client_secret)
    with (
        run_hub(tmp_path, database_url, providers={}, extra_env={**HUB_ENV, **oidc_env}) as hub,
        run_oidc_server(
            tmp_path,
            port=port,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=f"{hub.url}/oauth/callback",
            scopes=SCOPES,
            access_token_ttl=30,
        ) as oidc,
    ):
        hub.secrets.add(client_secret)
        yield hub, oidc


def _wait_until(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def _connection(hub: Hub, name: str) -> dict[str, Any]:
    with hub.admin() as admin:
        listed = admin.get("/admin/api/connections")
    assert listed.status_code == 200, listed.text
    (connection,) = (c for c in listed.json() if c["name"] == name)
    return connection  # type: ignore[no-any-return]


def _start_connect(hub: Hub, name: str) -> str:
    with hub.admin() as admin:
        start = admin.get("/connect/hubspot", params={"name": name, "scopes": "crm.contacts.read"})
    assert start.status_code == 302, start.text
    return start.headers["location"]


def _refreshes(oidc: OidcServer) -> int:
    return int(oidc.stats()["token_requests"].get("refresh_token", 0))


def test_connect_refresh_rotation_and_revocation_at_a_real_authorization_server(
    stack: tuple[Hub, OidcServer],
) -> None:
    hub, oidc = stack
    # The authorize request: PKCE S256, only the provider scope the hub scope needs, the registered redirect.
    authorize = _start_connect(hub, "crm")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(oidc.authorize_url)
    assert query["code_challenge_method"] == ["S256"] and query["scope"] == ["crm.objects.contacts.read"]
    assert query["redirect_uri"] == [f"{hub.url}/oauth/callback"]

    with httpx.Client(timeout=30) as browser:
        callback = oidc_authorize(browser, authorize)
    assert callback.startswith(f"{hub.url}/oauth/callback?")
    code = parse_qs(urlsplit(callback).query)["code"][0]

    # An intercepted code is worthless: the server refuses it without the verifier, or with a wrong one.
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": f"{hub.url}/oauth/callback",
        "client_id": oidc.client_id,
        "client_secret": oidc.client_secret,
    }
    for verifier in ({}, {"code_verifier": "x" * 64}):
        refused = httpx.post(oidc.token_url, data={**exchange, **verifier}, timeout=10)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert oidc.stats()["token_errors"] == {"authorization_code": 2}

    # The hub holds the verifier: the real callback completes the connection.
    with httpx.Client(timeout=30) as browser:
        done = browser.get(callback)
        assert done.status_code == 303, done.text
        # Replaying the callback finds the state spent; a forged state is unknown. Both are problem+json 400s.
        replayed = browser.get(callback)
        forged = browser.get(f"{hub.url}/oauth/callback", params={"state": "forged-" + "x" * 40, "code": code})
    for refused in (replayed, forged):
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "state" in refused.json()["detail"]
    assert oidc.stats()["token_requests"]["authorization_code"] == 3  # two refused above, one success
    connection = _connection(hub, "crm")
    assert connection["status"] == "active"
    assert connection["granted_scopes"] == ["crm.objects.contacts.read"]
    first_refresh_at = connection["last_refresh_at"]

    # The background refresher rotates: each refresh presents the refresh token the previous one returned.
    _wait_until("three refreshes", lambda: _refreshes(oidc) >= 3)
    stats = oidc.stats()
    assert stats["token_errors"] == {"authorization_code": 2}, stats["errors"]
    rotated = stats["rotated_refresh_tokens"]
    assert len(rotated) >= 3 and len(set(rotated)) == len(rotated)
    connection = _connection(hub, "crm")
    assert connection["status"] == "active" and connection["last_error"] is None
    assert datetime.fromisoformat(connection["last_refresh_at"]) > datetime.fromisoformat(first_refresh_at)

    # The token the hub holds is one the provider's resource server accepts.
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read")
    with hub.agent(key) as agent:
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert found.status_code == 200, found.text
        assert found.json()["result"]["contacts"][0]["email"] == "ada@example.com"
        assert oidc.stats()["api_refused"] == 0

        # The user revokes the app at the provider: one refused refresh, then needs_reauth, and no more tries.
        assert oidc.revoke_grants() == 1
        dead = _wait_until("needs_reauth", lambda: (c := _connection(hub, "crm"))["status"] == "needs_reauth" and c)
        assert "invalid_grant" in dead["last_error"]
        stats = oidc.stats()
        assert stats["token_errors"].get("refresh_token") == 1, stats["errors"]
        tried, api_requests = _refreshes(oidc), stats["api_requests"]
        time.sleep(3.5)  # three more refresher rounds
        assert _refreshes(oidc) == tried

        # A call now answers 409 at once, without a token request or an API request.
        blocked = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}})
        assert blocked.status_code == 409, blocked.text
        assert blocked.headers["content-type"].startswith("application/problem+json")
        assert blocked.json()["type"] == "connection_needs_reauth"
        assert _refreshes(oidc) == tried and oidc.stats()["api_requests"] == api_requests

        # Reconnecting (the same name) restores it.
        with httpx.Client(timeout=30) as browser:
            again = browser.get(oidc_authorize(browser, _start_connect(hub, "crm"), login="ada"))
        assert again.status_code == 303, again.text
        assert _connection(hub, "crm")["status"] == "active"
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert found.status_code == 200, found.text
