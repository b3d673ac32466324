"""The tools an agent sees, in the hub's own format and in Anthropic's, OpenAI's and MCP's.

When an agent may use a tool on several connections, the tool's schema gains a required `connection`
argument whose enum lists them, so models and MCP clients see the choice.

Descriptions are written per agent: a tool's own description, then what the agent's grants impose on that
tool, generated from their constraints, so a model does not waste turns on calls that will be refused:

    Search HubSpot contacts …

    Under your grant: only CRM records 51, 52; at most 20 results per call; email addresses are masked in
    results; at most 30 calls per minute through the crm.contacts.read grant.

Only constraints that apply to the tool are said (an allow-list the tool touches, `max_results` when it has a
page-size argument, amounts for tools that change something …); a constraint that refuses the tool outright
says so. Unconstrained grants leave the description as it is.
"""

from collections.abc import Mapping, Sequence
from copy import deepcopy
from functools import lru_cache
from typing import Any, Literal

from connectors import TOOLS
from connectors.base import Tool
from hub.policy_cache import AgentPrincipal
from scopes import GrantView
from scopes.constraints import Constraints
from scopes.labels import conventional_label, covers, is_known_label
from scopes.paths import PathError, parse_path

__all__ = ["FORMATS", "ToolFormat", "agent_tools", "grant_limits", "render"]

ToolFormat = Literal["switchboard", "anthropic", "openai", "mcp"]
FORMATS: tuple[str, ...] = ("switchboard", "anthropic", "openai", "mcp")

# How each allow-list reads in a sentence: (one entry, several entries).
_ALLOW_LIST_NOUNS = {
    "channels": ("channel", "channels"),
    "folders": ("folder", "folders"),
    "pipelines": ("pipeline", "pipelines"),
    "object_ids": ("CRM record", "CRM records"),
    "customers": ("customer", "customers"),
    "recipients_domain": ("recipients at", "recipients at"),
}
_LABEL_NOUNS = {
    "pii.email": "email addresses",
    "pii.phone": "phone numbers",
    "pii.name": "people's names",
    "pii.address": "postal addresses",
    "financial": "amounts and other figures",
    "financial.card": "card details",
}
_MAX_LISTED = 10
_REFUSED = "every call is refused"


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


# --- What a grant's constraints mean for one tool, in words ----------------------------------------------


def _entries(entries: Sequence[str]) -> str:
    shown = ", ".join(entries[:_MAX_LISTED])
    return shown if len(entries) <= _MAX_LISTED else f"{shown} and {len(entries) - _MAX_LISTED} more"


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@lru_cache(maxsize=256)
def _output_fields(name: str) -> frozenset[str]:
    """Every property name anywhere in the tool's output schema."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    found.update(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(TOOLS[name].output_model.model_json_schema())
    return frozenset(found)


def _allow_list_phrases(tool: Tool, c: Constraints) -> list[str]:
    policy, phrases = tool.policy, []
    for name, allowed in c.allow_lists.items():
        if not policy.annotated:
            phrases.append(f"{_REFUSED} (your grant limits {name}, and this tool cannot be checked against that)")
            continue
        if not policy.touches(name):
            continue
        entries = sorted(allowed)
        one, several = _ALLOW_LIST_NOUNS.get(name, (name, name))
        noun = one if len(entries) == 1 else several
        inside = " and what is inside them" if name == "folders" else ""
        if policy.argument_paths(name) or name in policy.resolved_resources:
            phrases.append(f"only {noun} {_entries(entries)}{inside}")
        else:
            phrases.append(f"results only include {noun} {_entries(entries)}{inside}")
    return phrases


def _amount_phrases(tool: Tool, c: Constraints) -> list[str]:
    policy = tool.policy
    if policy.read_only or (c.max_amount is None and c.currency is None):
        return []
    knows_amount = policy.amount is not None or tool.facts is not None
    knows_currency = policy.currency is not None or tool.facts is not None
    if (c.max_amount is not None and not knows_amount) or (c.currency is not None and not knows_currency):
        return [f"{_REFUSED} (your grant bounds amounts, and this tool's amount or currency cannot be determined)"]
    currencies = " or ".join(code.upper() for code in c.currency) if c.currency else ""
    if c.max_amount is None:
        return [f"only in {currencies}"]
    unit = "in the currency's smallest unit" if policy.amount_unit == "minor" else "in whole currency units"
    in_currency = f" {currencies}" if currencies else ""
    return [f"amounts up to {_number(c.max_amount)}{in_currency} ({unit})"]


def _property_phrases(tool: Tool, c: Constraints) -> list[str]:
    policy = tool.policy
    if c.allowed_properties is None or policy.read_only:
        return []
    if policy.properties is None:
        return [f"{_REFUSED} (your grant limits which properties may be set, and this tool cannot be checked)"]
    allowed = [p for p in policy.properties if p in c.allowed_properties]
    if not allowed:
        return ["you may set none of this tool's properties"]
    return [f"you may set only {_join(allowed)}"]


def _masked(tool: Tool, entry: str) -> str | None:
    """What `entry` of `redact` masks in this tool's results, in words; None when it masks nothing here."""
    fields = _output_fields(tool.name)
    if is_known_label(entry):
        declared = (*tool.labels, *tool.policy.label_fields)
        by_convention = any((label := conventional_label(f)) and covers(entry, label) for f in fields)
        if any(covers(entry, label) for label in declared) or by_convention:
            return _LABEL_NOUNS.get(entry, entry)
        return None
    try:
        last = parse_path(entry).segments[-1][0]
    except PathError:
        return None
    return f"field {last}" if last in fields else None


def _redact_phrases(tool: Tool, c: Constraints) -> list[str]:
    masked = list(dict.fromkeys(m for m in (_masked(tool, entry) for entry in c.redact) if m))
    if not masked:
        return []
    return [f"{_join(masked)} {'is' if len(masked) == 1 and masked[0].startswith('field') else 'are'} masked"]


def _approval_phrases(tool: Tool, c: Constraints) -> list[str]:
    condition = c.approval
    if condition is None:
        return []
    if condition.always:
        return ["every call needs a human's approval"]
    policy = tool.policy
    known = set(tool.input_schema.get("properties", {}))
    can_resolve = tool.facts is not None and not policy.read_only
    if policy.amount is not None or can_resolve:
        known.add("amount")
    if policy.currency is not None or can_resolve:
        known.add("currency")
    if not condition.names <= known:
        return ["every call needs a human's approval"]
    return [f"needs a human's approval when {condition.source}"]


def _rate_phrases(scope: str, c: Constraints) -> list[str]:
    if c.rate is None:
        return []
    limits = []
    if c.rate.per_minute is not None:
        limits.append(f"{c.rate.per_minute} calls per minute")
    if c.rate.per_day is not None:
        limits.append(f"{c.rate.per_day} {'calls ' if not limits else ''}per day")
    return [f"at most {' and '.join(limits)} through the {scope} grant"]


@lru_cache(maxsize=4096)
def _phrases(name: str, scope: str, c: Constraints) -> tuple[str, ...]:
    tool = TOOLS[name]
    phrases = _allow_list_phrases(tool, c)
    if c.max_results is not None and tool.policy.limit is not None:
        phrases.append(f"at most {c.max_results} results per call")
    phrases += _amount_phrases(tool, c)
    phrases += _property_phrases(tool, c)
    if c.redact:
        phrases += [f"{p} in results" for p in _redact_phrases(tool, c)]
    phrases += _approval_phrases(tool, c)
    phrases += _rate_phrases(scope, c)
    return tuple(phrases)


def grant_limits(tool: Tool, grants: Sequence[GrantView], connection: str) -> list[str]:
    """What the agent's grants impose on `tool` on `connection`, as short phrases for a model to read."""
    phrases: dict[str, None] = {}
    for grant in grants:
        if grant.provider != tool.provider or grant.connection != connection or grant.scope not in tool.scopes:
            continue
        if grant.parsed is None:
            phrases[f"{_REFUSED} until an admin fixes the constraints of your {grant.scope} grant"] = None
        elif not grant.parsed.empty:
            phrases.update(dict.fromkeys(_phrases(tool.name, grant.scope, grant.parsed)))
    return list(phrases)


def _description(tool: Tool, grants: Sequence[GrantView], connections: list[str]) -> str:
    by_limits: dict[tuple[str, ...], list[str]] = {}
    for connection in connections:
        limits = tuple(grant_limits(tool, grants, connection))
        if limits:
            by_limits.setdefault(limits, []).append(connection)
    if not by_limits:
        return tool.description
    sentences = []
    for limits, names in by_limits.items():
        if len(connections) == 1:
            where = "your grant"
        else:
            where = f"your grant{'s' if len(names) > 1 else ''} on {_join(names)}"
        sentences.append(f"Under {where}: {'; '.join(limits)}.")
    return f"{tool.description}\n\n{' '.join(sentences)}"


def agent_tools(agent: AgentPrincipal) -> list[dict[str, Any]]:
    """The hub's own listing: every tool the agent's grants allow, and nothing else, each described with
    what the grants impose on it."""
    listing = []
    for name in sorted(agent.tools):
        tool, connections = TOOLS[name], agent.tools[name]
        listing.append(
            {
                "name": name,
                "description": _description(tool, agent.grants, connections),
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
