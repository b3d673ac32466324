"""Slack: channels, messages and threads, posting, and people."""

from connectors.base import Connector, collect_tools
from connectors.slack import tools
from connectors.slack.client import SlackClient
from connectors.slack.manifest import MANIFEST

CONNECTOR = Connector(manifest=MANIFEST, make_client=SlackClient, tools=collect_tools(tools))

__all__ = ["CONNECTOR"]
