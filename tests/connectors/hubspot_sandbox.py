"""Tokens from the HubSpot sandbox for tests that drive the connector's client against it directly."""

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from connectors.hubspot.client import HubSpotClient
from hub.demo import approve_consent
from tests.harness import Sandbox

__all__ = ["ALL_SCOPES", "REDIRECT", "access_token", "hubspot_client"]

REDIRECT = "http://127.0.0.1:9/oauth/callback"
# Every provider scope the HubSpot connector's manifest can ask for.
ALL_SCOPES = " ".join(
    [f"crm.objects.{t}.{m}" for t in ("contacts", "companies", "deals") for m in ("read", "write")]
    + ["crm.objects.owners.read"]
)


def access_token(sandbox: Sandbox, scopes: str) -> str:
    """Walk the sandbox's OAuth flow: consent page, "Connect", code exchange."""
    query = urlencode({"client_id": sandbox.client_id, "redirect_uri": REDIRECT, "scope": scopes, "state": "s"})
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, f"{sandbox.url}/oauth/authorize?{query}")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        answer = browser.post(
            f"{sandbox.url}/oauth/v1/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            },
        )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def hubspot_client(sandbox: Sandbox, scopes: str = ALL_SCOPES) -> HubSpotClient:
    return HubSpotClient(access_token=access_token(sandbox, scopes), api_base=sandbox.url, timeout=10)
