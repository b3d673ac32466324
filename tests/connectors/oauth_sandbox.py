"""Walk a sandbox process's OAuth flow as a browser and a client would, for tests that need its tokens."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from hub.demo import approve_consent
from tests.harness import Sandbox

__all__ = ["REDIRECT", "authorization_code_tokens"]

REDIRECT = "http://127.0.0.1:9/oauth/callback"


def authorization_code_tokens(
    sandbox: Sandbox, *, authorize_path: str, token_path: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """Consent page, its approve button, code exchange: the token endpoint's answer."""
    query = urlencode({"client_id": sandbox.client_id, "redirect_uri": REDIRECT, **params})
    with httpx.Client(timeout=10) as browser:
        callback = approve_consent(browser, f"{sandbox.url}{authorize_path}?{query}")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        answer = browser.post(
            f"{sandbox.url}{token_path}",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            },
        )
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body
