"""Provider knowledge: one folder per provider, registered here. Never imports the hub."""

from types import MappingProxyType

from connectors import gmail, google_drive, hubspot, slack, stripe
from connectors.base import Connector, Tool

__all__ = ["CONNECTORS", "TOOLS", "Connector", "Tool"]

CONNECTORS: MappingProxyType[str, Connector] = MappingProxyType(
    {
        c.manifest.name: c
        for c in (hubspot.CONNECTOR, google_drive.CONNECTOR, gmail.CONNECTOR, slack.CONNECTOR, stripe.CONNECTOR)
    }
)

TOOLS: MappingProxyType[str, Tool] = MappingProxyType({t.name: t for c in CONNECTORS.values() for t in c.tools})
