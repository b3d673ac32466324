"""Gmail v1 for one connection and token, with the resource collections the tools use."""

from typing import Any

from connectors.google_common import GoogleClient

__all__ = ["GmailClient"]


class GmailClient(GoogleClient):
    display_name = "Gmail"

    def __init__(self, *, access_token: str, api_base: str, timeout: float) -> None:
        # Gmail's discovery document has an empty servicePath: its paths start with gmail/v1/.
        super().__init__(
            api="gmail",
            version="v1",
            service_path="",
            access_token=access_token,
            api_base=api_base,
            timeout=timeout,
        )
        self.messages: Any = self.collection("users", "messages")
        self.drafts: Any = self.collection("users", "drafts")
        self.labels: Any = self.collection("users", "labels")
