"""Slack OAuth v2 through authlib as the hub drives it (hub.providers.oauth_client with the Slack manifest):
comma-separated scopes, PKCE, HTTP Basic client authentication, and Slack's HTTP 200 `ok: false` token errors
turned into standard OAuth errors by the manifest's compliance hooks."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

from connectors import CONNECTORS
from connectors.slack.oauth import normalise_token_response, oauth_error_of
from hub.demo import approve_consent
from hub.providers import ProviderEndpoints, oauth_client
from tests.harness import Sandbox, run_sandbox

MANIFEST = CONNECTORS["slack"].manifest
REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tmp: Path = tmp_path_factory.mktemp("slack-oauth")
    with run_sandbox("slack", tmp, "--rotate-refresh-tokens", "--access-token-ttl", "120") as running:
        yield running


def _endpoints(sandbox: Sandbox, secret: str | None = None) -> ProviderEndpoints:
    return ProviderEndpoints(
        MANIFEST,
        authorize_url=f"{sandbox.url}/oauth/v2/authorize",
        token_url=f"{sandbox.url}/api/oauth.v2.access",
        api_base=f"{sandbox.url}/api",
        client_id=sandbox.client_id,
        client_secret=secret or sandbox.client_secret,
    )


def _authorize(sandbox: Sandbox, hub_scopes: list[str]) -> tuple[str, str, dict[str, list[str]]]:
    """The authorize URL the hub would build, approved on the consent page: (code, verifier, its query)."""
    verifier = generate_token(64)
    with oauth_client(_endpoints(sandbox), redirect_uri=REDIRECT, timeout=10) as client:
        url, _ = client.create_authorization_url(
            f"{sandbox.url}/oauth/v2/authorize",
            state="st",
            code_verifier=verifier,
            scope=MANIFEST.scope_separator.join(MANIFEST.provider_scopes(hub_scopes)),
        )
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, url)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    return code, verifier, parse_qs(urlsplit(url).query)


def _exchange(sandbox: Sandbox, code: str, verifier: str, secret: str | None = None) -> dict[str, Any]:
    with oauth_client(_endpoints(sandbox, secret), redirect_uri=REDIRECT, timeout=10) as client:
        token: dict[str, Any] = dict(
            client.fetch_token(f"{sandbox.url}/api/oauth.v2.access", code=code, code_verifier=verifier)
        )
    return token


def test_the_manifest_asks_for_the_least_slack_scopes_per_hub_scope() -> None:
    assert MANIFEST.provider_scopes(["messaging.chat.send"]) == ["chat:write"]
    assert MANIFEST.provider_scopes(["messaging.chat.read"]) == [
        "channels:history",
        "channels:read",
        "groups:history",
        "groups:read",
        "users:read",
        "users:read.email",
    ]
    assert MANIFEST.scope_separator == "," and MANIFEST.pkce
    assert MANIFEST.account_of({"team": {"id": "T1", "name": "Acme"}}) == "Acme"


def test_code_exchange_gives_a_rotating_bot_token_for_the_workspace(sandbox: Sandbox) -> None:
    code, verifier, query = _authorize(sandbox, ["messaging.chat.send"])
    assert query["scope"] == ["chat:write"]
    assert query["code_challenge_method"] == ["S256"]
    token = _exchange(sandbox, code, verifier)
    assert token["token_type"] == "Bearer"
    assert token["access_token"].startswith("xoxe.xoxb-") and token["refresh_token"].startswith("xoxe-1-")
    assert token["expires_in"] == 120 and token["expires_at"]
    assert token["scope"] == "chat:write" and "ok" not in token
    assert MANIFEST.account_of(token) == "Switchboard Sandbox"


def test_refresh_rotates_and_a_spent_refresh_token_is_invalid_grant(sandbox: Sandbox) -> None:
    code, verifier, _ = _authorize(sandbox, ["messaging.chat.read"])
    first = _exchange(sandbox, code, verifier)
    endpoints = _endpoints(sandbox)
    with oauth_client(endpoints, redirect_uri=REDIRECT, timeout=10) as client:
        second = client.refresh_token(endpoints.token_url, refresh_token=first["refresh_token"])
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        assert second["scope"].split(",") == MANIFEST.provider_scopes(["messaging.chat.read"])
        with pytest.raises(OAuthError) as spent:
            client.refresh_token(endpoints.token_url, refresh_token=first["refresh_token"])
    assert (spent.value.error, spent.value.description) == ("invalid_grant", "invalid_refresh_token")


def test_a_reused_code_a_wrong_verifier_and_a_wrong_secret_are_oauth_errors(sandbox: Sandbox) -> None:
    code, verifier, _ = _authorize(sandbox, ["messaging.chat.send"])
    with pytest.raises(OAuthError) as wrong_verifier:
        _exchange(sandbox, code, "x" * 64)
    assert (wrong_verifier.value.error, wrong_verifier.value.description) == ("invalid_grant", "invalid_code_verifier")
    with pytest.raises(OAuthError) as reused:
        _exchange(sandbox, code, verifier)  # the failed attempt spent the code, as Slack does
    assert (reused.value.error, reused.value.description) == ("invalid_grant", "invalid_code")
    other, other_verifier, _ = _authorize(sandbox, ["messaging.chat.send"])
    with pytest.raises(OAuthError) as bad_secret:
        _exchange(sandbox, other, other_verifier, secret="not-the-secret")
    assert (bad_secret.value.error, bad_secret.value.description) == ("invalid_client", "bad_client_secret")


@pytest.mark.parametrize(
    ("slack", "oauth"),
    [
        ("invalid_code", "invalid_grant"),
        ("invalid_refresh_token", "invalid_grant"),
        ("bad_redirect_uri", "invalid_grant"),
        ("token_revoked", "invalid_grant"),
        ("bad_client_secret", "invalid_client"),
        ("invalid_grant_type", "unsupported_grant_type"),
        ("ratelimited", "temporarily_unavailable"),
        ("something_new", "invalid_request"),
    ],
)
def test_slack_token_errors_map_to_rfc6749_codes(slack: str, oauth: str) -> None:
    assert oauth_error_of(slack) == oauth
    normalised = normalise_token_response(httpx2.Response(200, json={"ok": False, "error": slack}))
    assert normalised.status_code == 400
    assert normalised.json() == {"error": oauth, "error_description": slack}


def test_the_hook_keeps_success_drops_user_tokens_and_leaves_standard_answers_alone() -> None:
    slack_answer = {
        "ok": True,
        "access_token": "xoxb-1",
        "token_type": "bot",
        "scope": "chat:write",
        "team": {"id": "T1", "name": "Acme"},
        "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-user", "token_type": "user"},
        "warning": "superfluous_charset",
    }
    normalised = normalise_token_response(httpx2.Response(200, json=slack_answer))
    assert normalised.status_code == 200
    assert normalised.json() == {
        "access_token": "xoxb-1",
        "token_type": "Bearer",
        "scope": "chat:write",
        "team": {"id": "T1", "name": "Acme"},
        "authed_user": {"id": "U1", "scope": "search:read"},
    }
    standard = httpx2.Response(400, json={"error": "invalid_grant"})
    assert normalise_token_response(standard) is standard
    html = httpx2.Response(502, text="<html>bad gateway</html>")
    assert normalise_token_response(html) is html
    limited = normalise_token_response(httpx2.Response(429, json={"ok": False, "error": "ratelimited"}))
    assert limited.status_code == 429 and limited.json()["error"] == "temporarily_unavailable"
