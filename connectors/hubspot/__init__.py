"""HubSpot CRM."""

from connectors.base import Connector
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.manifest import MANIFEST
from connectors.hubspot.tools import TOOLS

CONNECTOR = Connector(manifest=MANIFEST, make_client=HubSpotClient, tools=TOOLS)

__all__ = ["CONNECTOR"]
