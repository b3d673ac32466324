"""Provider knowledge: one folder per provider, registered here. Never imports the hub."""

from types import MappingProxyType

from connectors import hubspot
from connectors.base import Connector, Tool

__all__ = ["CONNECTORS", "TOOLS", "Connector", "Tool"]

CONNECTORS: MappingProxyType[str, Connector] = MappingProxyType(
    {c.manifest.name: c for c in (hubspot.CONNECTOR,)}
)

TOOLS: MappingProxyType[str, Tool] = MappingProxyType(
    {t.name: t for c in CONNECTORS.values() for t in c.tools}
)
