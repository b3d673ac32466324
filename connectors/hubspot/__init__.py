"""HubSpot CRM."""

from connectors.base import Connector, collect_tools
from connectors.hubspot import tools
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.manifest import MANIFEST

CONNECTOR = Connector(manifest=MANIFEST, make_client=HubSpotClient, tools=collect_tools(tools))

__all__ = ["CONNECTOR"]
