"""The Google sandbox for tests that drive the Drive and Gmail clients against it directly: one sandbox
process serves both APIs, and tokens come from walking its OAuth flow."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.connectors.oauth_sandbox import REDIRECT, authorization_code_tokens
from tests.harness import Sandbox, run_sandbox

__all__ = [
    "DRIVE",
    "DRIVE_READONLY",
    "GMAIL_COMPOSE",
    "GMAIL_READONLY",
    "REDIRECT",
    "access_token",
    "google_sandbox",
    "throttle",
    "token_response",
]

_AUTH = "https://www.googleapis.com/auth/"
DRIVE, DRIVE_READONLY = _AUTH + "drive", _AUTH + "drive.readonly"
GMAIL_READONLY, GMAIL_COMPOSE = _AUTH + "gmail.readonly", _AUTH + "gmail.compose"


@contextmanager
def google_sandbox(tmp: Path) -> Iterator[Sandbox]:
    """The Google sandbox on its own port, with Google's one-hour access tokens."""
    with run_sandbox("google_drive", tmp, "--access-token-ttl", "3599") as sandbox:
        yield sandbox


def token_response(sandbox: Sandbox, scopes: str, **authorize: str) -> dict[str, Any]:
    """Walk the sandbox's OAuth flow (consent page, "Continue", code exchange); the token endpoint's answer."""
    params = {"response_type": "code", "scope": scopes, "state": "s", **authorize}
    return authorization_code_tokens(sandbox, authorize_path="/o/oauth2/v2/auth", token_path="/token", params=params)


def access_token(sandbox: Sandbox, scopes: str) -> str:
    token: str = token_response(sandbox, scopes)["access_token"]
    return token


def throttle(sandbox: Sandbox, count: int, retry_after: int | None, reason: str = "rateLimitExceeded") -> None:
    body = {"count": count, "retry_after": retry_after, "reason": reason}
    httpx.post(f"{sandbox.url}/_control/throttle", json=body).raise_for_status()
