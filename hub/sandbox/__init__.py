"""Sandbox providers: small, stateful, in-memory emulations of the providers the hub connects to.

One module per provider (`hub.sandbox.hubspot`, …), each exposing an ASGI app that the hub mounts at
`/sandbox/{provider}` in demo mode, or that `python -m hub.sandbox PROVIDER` serves alone.
"""

from hub.sandbox._common import Sandbox, SandboxFactory
from hub.sandbox.google import GoogleSandbox
from hub.sandbox.hubspot import HubSpotSandbox
from hub.sandbox.slack import SlackSandbox
from hub.sandbox.stripe import StripeSandbox

__all__ = ["SANDBOXES", "Sandbox", "SandboxFactory"]

SANDBOXES: dict[str, SandboxFactory] = {
    "hubspot": HubSpotSandbox,
    "slack": SlackSandbox,
    "google_drive": GoogleSandbox,
    "gmail": GoogleSandbox,
    "stripe": StripeSandbox,
}
