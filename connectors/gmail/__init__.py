"""Gmail."""

from connectors.base import Connector, collect_tools
from connectors.gmail import tools
from connectors.gmail.client import GmailClient
from connectors.gmail.manifest import MANIFEST

CONNECTOR = Connector(manifest=MANIFEST, make_client=GmailClient, tools=collect_tools(tools))

__all__ = ["CONNECTOR"]
