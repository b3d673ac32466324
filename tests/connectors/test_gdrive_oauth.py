"""The Google sandbox's OAuth server behaves like Google's, in process: PKCE, offline access and
`prompt=consent` deciding whether a refresh token is issued, refresh tokens that do not rotate, incremental
authorisation, revocation of a whole grant, and Google's error answers."""

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from connectors import CONNECTORS
from hub.sandbox import SANDBOXES
from hub.sandbox.google import GoogleSandbox
from tests.connectors.google_sandbox import DRIVE, DRIVE_READONLY, GMAIL_COMPOSE, GMAIL_READONLY

CLIENT_ID, CLIENT_SECRET = "google-client", "google-secret"
REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture
def google() -> Iterator[TestClient]:
    sandbox = GoogleSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with TestClient(sandbox.app, follow_redirects=False) as client:
        yield client


def _code(client: TestClient, scopes: str, verifier: str | None = None, **extra: str) -> str:
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": scopes, "state": "st"}
    if verifier:
        digest = hashlib.sha256(verifier.encode()).digest()
        params |= {
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    params |= extra
    page = client.get(f"/o/oauth2/v2/auth?{urlencode(params)}")
    assert page.status_code == 200 and "Continue" in page.text
    answer = client.post("/o/oauth2/v2/auth", data={**params, "decision": "approve"})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st"]
    return query["code"][0]


def _exchange(client: TestClient, code: str, verifier: str | None = None) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if verifier:
        form["code_verifier"] = verifier
    return client.post("/token", data=form)


def _refresh(client: TestClient, refresh_token: str) -> Any:
    return client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )


def test_both_providers_share_one_oauth_client_and_sandbox() -> None:
    drive, gmail = CONNECTORS["google_drive"].manifest, CONNECTORS["gmail"].manifest
    assert drive.settings_key == gmail.settings_key == "google"
    for manifest in (drive, gmail):
        assert manifest.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
        assert manifest.token_url == "https://oauth2.googleapis.com/token"
        assert manifest.revoke_url == "https://oauth2.googleapis.com/revoke"
        assert manifest.api_base == "https://www.googleapis.com" and manifest.pkce
        assert dict(manifest.authorize_params) == {
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
        }
    assert SANDBOXES["google_drive"] is SANDBOXES["gmail"] is GoogleSandbox
    assert drive.provider_scopes(["storage.files.read"]) == [DRIVE_READONLY]
    assert drive.provider_scopes(["storage.files.read", "storage.files.write"]) == [DRIVE]
    assert gmail.provider_scopes(["messaging.email.read", "messaging.email.send"]) == [GMAIL_COMPOSE, GMAIL_READONLY]


def test_offline_consent_gives_a_refresh_token_that_does_not_rotate(google: TestClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _code(google, DRIVE_READONLY, verifier, access_type="offline", prompt="consent")
    token = _exchange(google, code, verifier).json()
    assert token["expires_in"] == 3599 and token["token_type"] == "Bearer" and token["scope"] == DRIVE_READONLY
    assert token["access_token"].startswith("ya29.") and token["refresh_token"].startswith("1//")
    assert _exchange(google, code, verifier).json()["error"] == "invalid_grant"  # a code works once
    for _ in range(2):
        refreshed = _refresh(google, token["refresh_token"])
        assert refreshed.status_code == 200
        assert "refresh_token" not in refreshed.json() and refreshed.json()["scope"] == DRIVE_READONLY
    listed = google.get("/drive/v3/files", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert listed.status_code == 200


def test_a_refresh_token_needs_offline_access_and_again_prompt_consent(google: TestClient) -> None:
    online = _exchange(google, _code(google, DRIVE_READONLY)).json()
    assert "refresh_token" not in online
    first = _exchange(google, _code(google, DRIVE_READONLY, access_type="offline")).json()
    assert "refresh_token" in first
    again = _exchange(google, _code(google, DRIVE_READONLY, access_type="offline")).json()
    assert "refresh_token" not in again  # Google gives it once, unless consent is asked for again
    consent = _exchange(google, _code(google, DRIVE_READONLY, access_type="offline", prompt="consent")).json()
    assert "refresh_token" in consent


def test_include_granted_scopes_adds_what_the_account_granted_before(google: TestClient) -> None:
    _exchange(google, _code(google, DRIVE_READONLY))
    narrow = _exchange(google, _code(google, GMAIL_READONLY)).json()
    assert narrow["scope"] == GMAIL_READONLY
    wide = _exchange(google, _code(google, GMAIL_READONLY, include_granted_scopes="true")).json()
    assert wide["scope"].split() == sorted([DRIVE_READONLY, GMAIL_READONLY])


def test_pkce_is_enforced(google: TestClient) -> None:
    verifier = secrets.token_urlsafe(48)
    assert _exchange(google, _code(google, DRIVE, verifier)).json()["error"] == "invalid_grant"
    wrong = _exchange(google, _code(google, DRIVE, verifier), "x" * 48).json()
    assert (wrong["error"], wrong["error_description"]) == ("invalid_grant", "Invalid code verifier.")
    assert _exchange(google, _code(google, DRIVE, verifier), verifier).status_code == 200


def test_revoking_any_token_ends_the_grant(google: TestClient) -> None:
    token = _exchange(google, _code(google, DRIVE, access_type="offline", prompt="consent")).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert google.post("/revoke", data={"token": token["refresh_token"]}).status_code == 200
    assert google.get("/drive/v3/files", headers=auth).status_code == 401
    assert _refresh(google, token["refresh_token"]).json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    assert google.post("/revoke", data={"token": token["refresh_token"]}).json()["error"] == "invalid_token"


def test_bad_requests_get_googles_errors(google: TestClient) -> None:
    base = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": DRIVE}
    for change, error in (
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"scope": "https://www.googleapis.com/auth/everything"}, "invalid_scope"),
        ({"scope": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"redirect_uri": "/relative"}, "redirect_uri_mismatch"),
    ):
        page = google.get(f"/o/oauth2/v2/auth?{urlencode(base | change)}")
        assert page.status_code == 400 and f"Error 400: {error}" in page.text
    denied = google.post("/o/oauth2/v2/auth", data={**base, "state": "st", "decision": "deny"})
    assert parse_qs(urlsplit(denied.headers["location"]).query)["error"] == ["access_denied"]
    wrong_secret = google.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": CLIENT_ID, "client_secret": "wrong"},
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    no_token = google.get("/gmail/v1/users/me/labels")
    assert no_token.status_code == 401 and no_token.json()["error"]["status"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in no_token.headers["www-authenticate"]


def test_a_token_without_the_scope_gets_googles_403(google: TestClient) -> None:
    token = _exchange(google, _code(google, GMAIL_READONLY)).json()["access_token"]
    refused = google.post("/drive/v3/files", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["errors"][0]["reason"] == "insufficientPermissions"
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert f"{DRIVE} " in refused.headers["www-authenticate"] or f'{DRIVE}"' in refused.headers["www-authenticate"]
