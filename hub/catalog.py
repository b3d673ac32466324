"""The tools an agent sees, in the hub's own format and in Anthropic's, OpenAI's and MCP's.

When an agent may use a tool on several connections, the tool's schema gains a required `connection`
argument whose enum lists them, so models and MCP clients see the choice.
"""

from collections.abc import Mapping
from copy import deepcopy
from typing import Any, Literal

from connectors import TOOLS
from hub.policy_cache import AgentPrincipal

__all__ = ["FORMATS", "ToolFormat", "agent_tools", "render"]

ToolFormat = Literal["switchboard", "anthropic", "openai", "mcp"]
FORMATS: tuple[str, ...] = ("switchboard", "anthropic", "openai", "mcp")


def _schema(base: Mapping[str, Any], connections: list[str]) -> dict[str, Any]:
    if len(connections) == 1:
        return dict(base)
    schema = deepcopy(dict(base))
    schema["properties"] = {
        **schema.get("properties", {}),
        "connection": {
            "type": "string",
            "enum": connections,
            "description": "Which connected account to use.",
        },
    }
    schema["required"] = [*schema.get("required", []), "connection"]
    return schema


def agent_tools(agent: AgentPrincipal) -> list[dict[str, Any]]:
    """The hub's own listing: every tool the agent's grants allow, and nothing else."""
    listing = []
    for name in sorted(agent.tools):
        tool, connections = TOOLS[name], agent.tools[name]
        listing.append(
            {
                "name": name,
                "description": tool.description,
                "input_schema": _schema(tool.input_schema, connections),
                "scopes": list(tool.scopes),
                "connections": connections,
            }
        )
    return listing


def render(listing: list[dict[str, Any]], fmt: ToolFormat) -> list[dict[str, Any]]:
    if fmt == "anthropic":
        return [
            {"name": t["name"], "description": t["description"], "input_schema": t["input_schema"]} for t in listing
        ]
    if fmt == "openai":
        return [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in listing
        ]
    if fmt == "mcp":
        return [{"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]} for t in listing]
    return listing
