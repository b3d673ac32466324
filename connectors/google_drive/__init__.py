"""Google Drive."""

from connectors.base import Connector, collect_tools
from connectors.google_drive import tools
from connectors.google_drive.client import DriveClient
from connectors.google_drive.manifest import MANIFEST

CONNECTOR = Connector(manifest=MANIFEST, make_client=DriveClient, tools=collect_tools(tools))

__all__ = ["CONNECTOR"]
