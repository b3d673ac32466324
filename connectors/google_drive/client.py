"""Drive v3 for one connection and token, with the resource collections the tools use."""

from typing import Any

from connectors.google_common import GoogleClient

__all__ = ["DriveClient"]


class DriveClient(GoogleClient):
    display_name = "Google Drive"

    def __init__(self, *, access_token: str, api_base: str, timeout: float) -> None:
        super().__init__(
            api="drive",
            version="v3",
            service_path="drive/v3/",
            access_token=access_token,
            api_base=api_base,
            timeout=timeout,
        )
        self.files: Any = self.collection("files")
        self.permissions: Any = self.collection("permissions")
