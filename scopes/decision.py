"""What policy answers: a `Decision`, with every rule that fired, for the hub and for `explain`.

`outcome` is `allow`, `deny` (with `reason`, the problem slug the hub answers with: `scope_denied`,
`invalid_arguments`, `constraint_violated`, `flow_blocked`, `rate_limited`) or `pending_approval` (`reason`
`approval_required`: the call waits for a human). `detail` is the message of the rule that decided, safe to
show the agent. `rules` lists every rule checked, in order, with its effect; `to_dict()` is the JSON the
explain endpoint returns.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["Decision", "Effect", "FiredRule", "Outcome", "ResultPolicy", "combine"]

Outcome = Literal["allow", "deny", "pending_approval"]
Effect = Literal["pass", "deny", "clamp", "approve", "filter", "redact"]
APPROVAL_REQUIRED = "approval_required"


@dataclass(frozen=True, slots=True)
class FiredRule:
    """One rule checked for a call.

    `rule`: scope, constraints, allow_list, max_results, max_amount, currency, allowed_properties, approval,
    rate, flow, untrusted_session, filter or redact. `effect`: pass (checked, no objection), deny, clamp (an
    argument was lowered), approve (a human must approve), filter / redact (results were narrowed / masked).
    `constraint` names the constraint key (`channels`, `max_amount`, a flow's label); `scope` the grant it
    came from; `reason` the problem slug of a denial."""

    rule: str
    effect: Effect
    detail: str
    constraint: str = ""
    scope: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        fields = {
            "rule": self.rule,
            "effect": self.effect,
            "detail": self.detail,
            "constraint": self.constraint,
            "scope": self.scope,
            "reason": self.reason,
        }
        return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True, slots=True)
class ResultPolicy:
    """What the grants ask of the result, for the step after the provider answers (`scopes.redaction`).

    `allow_lists`: the intersection of each allow-list over the grants the call used; `redact`: the union of
    their `redact` entries; `max_results`: the clamp, when one applied."""

    allow_lists: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    redact: tuple[str, ...] = ()
    max_results: int | None = None

    @property
    def empty(self) -> bool:
        return not self.allow_lists and not self.redact


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    # The problem slug the hub answers with when denied (DESIGN.md section 5, Errors).
    reason: str = ""
    detail: str = ""
    connection: str | None = None
    rules: tuple[FiredRule, ...] = ()
    # Arguments to change before calling (max_results clamps): apply with `args.model_copy(update=changes)`.
    changes: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Agent-facing notes for the result's metadata ("at most 50 results per call under this grant").
    notes: tuple[str, ...] = ()
    results: ResultPolicy = field(default_factory=ResultPolicy)
    # Seconds to wait, for `rate_limited`.
    retry_after: int | None = None
    # Rate limits that apply to this call; the hub counts them (see scopes.policy.check_rates).
    rate_limits: tuple["RateLimit", ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"

    @property
    def pending(self) -> bool:
        return self.outcome == "pending_approval"

    def to_dict(self) -> dict[str, Any]:
        """JSON for `POST /admin/api/explain`."""
        return {
            "outcome": self.outcome,
            "reason": self.reason or None,
            "detail": self.detail or None,
            "connection": self.connection,
            "rules": [r.to_dict() for r in self.rules],
            "changes": dict(self.changes),
            "notes": list(self.notes),
            "results": {
                "allow_lists": {k: sorted(v) for k, v in self.results.allow_lists.items()},
                "redact": list(self.results.redact),
                "max_results": self.results.max_results,
            },
            "retry_after": self.retry_after,
            "rate_limits": [r.to_dict() for r in self.rate_limits],
        }


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A grant's `rate`: the calls of one agent through one grant (connection + scope) per minute and day.
    The hub keeps one counter per (agent, connection, scope, window)."""

    connection: str
    scope: str
    per_minute: int | None
    per_day: int | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.connection, self.scope)

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "scope": self.scope,
            "per_minute": self.per_minute,
            "per_day": self.per_day,
        }


def combine(rules: list[FiredRule] | tuple[FiredRule, ...], *, connection: str | None = None, **extra: Any) -> Decision:
    """The Decision `rules` add up to: the first denial decides; else a rule asking approval; else allow."""
    for rule in rules:
        if rule.effect == "deny":
            return Decision("deny", rule.reason, rule.detail, connection, tuple(rules), **extra)
    for rule in rules:
        if rule.effect == "approve":
            return Decision("pending_approval", APPROVAL_REQUIRED, rule.detail, connection, tuple(rules), **extra)
    return Decision("allow", "", "", connection, tuple(rules), **extra)
