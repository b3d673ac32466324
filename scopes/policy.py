"""The call decision: which tools a set of grants allows, and whether one call may proceed.

Everything here is a pure function of its inputs, so the hub can cache inputs freely and tests need no
fixtures. Constraints (allow-lists, limits, redaction, approval, data flow) extend `decide` without
changing its shape: inputs in, a `Decision` out.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Decision", "GrantView", "decide", "tools_allowed"]


@dataclass(frozen=True, slots=True)
class GrantView:
    """What policy needs to know of one grant: a scope on a connection, with its constraints."""

    connection: str
    provider: str
    scope: str
    constraints: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Literal["allow", "deny"]
    # The problem slug the hub answers with when denied (DESIGN.md section 5, Errors).
    reason: str = ""
    detail: str = ""
    connection: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"


def connections_for(provider: str, needed: Iterable[str], grants: Sequence[GrantView]) -> list[str]:
    """Connections of `provider` on which every scope in `needed` is granted, in name order."""
    need = set(needed)
    held: dict[str, set[str]] = {}
    for grant in grants:
        if grant.provider == provider:
            held.setdefault(grant.connection, set()).add(grant.scope)
    return sorted(name for name, scopes in held.items() if need <= scopes)


def tools_allowed(
    tools: Iterable[tuple[str, str, Sequence[str]]], grants: Sequence[GrantView]
) -> dict[str, list[str]]:
    """Map each tool name (given as `(name, provider, scopes)`) the grants allow to its usable connections."""
    allowed: dict[str, list[str]] = {}
    for name, provider, needed in tools:
        usable = connections_for(provider, needed, grants)
        if usable:
            allowed[name] = usable
    return allowed


def decide(
    *,
    tool: str,
    provider: str,
    needed: Sequence[str],
    grants: Sequence[GrantView],
    connection: str | None,
) -> Decision:
    """Decide whether `tool` may run, and on which connection.

    Deny by default: the agent must hold every scope the tool needs on one connection of the tool's
    provider. When it may use several, it must name one; naming one it may not use is a scope denial that
    does not reveal whether that connection exists.
    """
    usable = connections_for(provider, needed, grants)
    if not usable:
        return Decision("deny", "scope_denied", f"no grant of {', '.join(needed)} allows {tool}")
    if connection is None:
        if len(usable) > 1:
            return Decision(
                "deny", "invalid_arguments", f"'connection' is required: one of {', '.join(usable)}"
            )
        return Decision("allow", connection=usable[0])
    if connection not in usable:
        return Decision(
            "deny", "scope_denied", f"no grant of {', '.join(needed)} on connection {connection!r}"
        )
    return Decision("allow", connection=connection)
