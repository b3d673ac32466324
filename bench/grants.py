"""The grants the hub is measured with: one agent per grant of crm.contacts.read, each its own mode.

`hub` (agent `plain`) holds the grant without constraints; `constrained` holds the same grant with a
realistic set of constraints, and `constrained-norate` the same set without `rate`: a rate limit is the one
constraint that costs a database round trip per call (its counters), the others are pure functions.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONSTRAINED", "NORATE", "PLAIN", "SCOPE", "AgentGrant", "agent_grants", "constraints", "describe"]

SCOPE = "crm.contacts.read"
# Listed besides the ids a run calls, so the allow-list is a realistic size, not a single entry.
_OTHER_IDS = 49
PLAIN, CONSTRAINED, NORATE = "hub", "constrained", "constrained-norate"  # modes, as Targets name them


@dataclass(frozen=True)
class AgentGrant:
    mode: str
    agent: str
    constraints: dict[str, Any] = field(default_factory=dict)

    @property
    def redacts(self) -> bool:
        return bool(self.constraints.get("redact"))


def constraints(object_ids: Sequence[str], *, rate: bool = True) -> dict[str, Any]:
    """The realistic constraints set: an allow-list of records, a page-size clamp, PII masked, a rate."""
    listed = [*object_ids, *(str(900_000 + i) for i in range(_OTHER_IDS))]
    chosen: dict[str, Any] = {"object_ids": listed, "max_results": 50, "redact": ["pii.email", "pii.phone"]}
    if rate:
        chosen["rate"] = {"per_minute": 1_000_000}  # never reached: the counting is what is measured
    return chosen


def agent_grants(contact_id: str) -> list[AgentGrant]:
    """The agents to create, one per mode; every allow-list includes the contact the bench reads."""
    return [
        AgentGrant(PLAIN, "plain"),
        AgentGrant(CONSTRAINED, "constrained", constraints([contact_id])),
        AgentGrant(NORATE, "constrained-norate", constraints([contact_id], rate=False)),
    ]


def describe(chosen: dict[str, Any]) -> str:
    """The constraints in a few words, for the report: `object_ids (50 ids), max_results 50, ...`."""
    if not chosen:
        return "no constraints"
    parts = []
    for name, value in chosen.items():
        if name == "rate":
            parts.append(f"rate {value['per_minute']:,}/min")
        elif name == "redact":
            parts.append(f"redact {' + '.join(value)}")
        elif isinstance(value, list):
            parts.append(f"{name} ({len(value)} ids)")
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts)
