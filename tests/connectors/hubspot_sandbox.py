"""Tokens from the HubSpot sandbox for tests that drive the connector's client against it directly."""

from collections.abc import Sequence

import aiohttp

from connectors.hubspot.client import HubSpotClient
from tests.connectors.oauth_sandbox import REDIRECT, authorization_code_tokens
from tests.harness import Sandbox

__all__ = ["ALL_SCOPES", "REDIRECT", "access_token", "hubspot_client"]

# Every provider scope the HubSpot connector's manifest can ask for.
ALL_SCOPES = " ".join(
    [f"crm.objects.{t}.{m}" for t in ("contacts", "companies", "deals") for m in ("read", "write")]
    + ["crm.objects.owners.read"]
)


def access_token(sandbox: Sandbox, scopes: str) -> str:
    """Walk the sandbox's OAuth flow: consent page, "Connect", code exchange."""
    params = {"scope": scopes, "state": "s"}
    answer = authorization_code_tokens(
        sandbox, authorize_path="/oauth/authorize", token_path="/oauth/v1/token", params=params
    )
    token: str = answer["access_token"]
    return token


def hubspot_client(
    sandbox: Sandbox, scopes: str = ALL_SCOPES, trace_configs: Sequence[aiohttp.TraceConfig] = ()
) -> HubSpotClient:
    return HubSpotClient(
        access_token=access_token(sandbox, scopes), api_base=sandbox.url, timeout=10, trace_configs=trace_configs
    )
