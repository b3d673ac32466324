"""The call decision: which tools a set of grants allows, and whether one call may proceed.

Everything here is a pure function of its inputs, so the hub can cache inputs freely and tests need no
fixtures. `decide` is the one call the hub makes per request, with what it knows:

    decision = decide(
        tool=tool.name, provider=tool.provider, needed=tool.scopes, grants=agent.grants, connection=connection,
        policy=tool.policy,                       # the tool's metadata (connectors.base.Tool.policy)
        arguments=args.model_dump(),              # validated; None = check the scope alone
        facts=CallFacts(...),                     # what the hub looked up: folders, amount, currency, recipients
        flow=FlowContext(fingerprints, key, rules),   # the agent's fingerprints and flow rules (sinks only)
        session=SessionState(untrusted=..., policy=...),
        usage={(connection, scope): RateUsage(...)},  # counters incremented for this call, if counted first
        approved=False,                           # True when running a call a human approved
    )

Rules run in order and every one is recorded in `decision.rules`: scope → the constraints of each grant the
call uses (allow-lists, max_results, max_amount/currency, allowed_properties, approval) → rate → data flow →
untrusted session. The first denial decides the outcome; otherwise any rule asking approval makes it
`pending_approval`; otherwise `allow`. A scope denial stops at once (an agent without the scope learns nothing
more), and so does `arguments=None`, which is the old scope-only decision.

How the hub wires each rule (nothing here does I/O):
- scope: as before; `decision.connection` is the connection to use.
- arguments: validate first; if validation fails, call `decide(arguments=None)` and answer its scope
  denial in preference to the validation error, so an agent without the scope learns nothing from it.
- constraints: `GrantView` parses its constraints once when built; invalid stored constraints refuse the
  grant's calls (`constraint_violated`) instead of being ignored.
- max_results: call the tool with `args.model_copy(update=decision.changes)`; put `decision.notes` in the
  result's metadata.
- allow-lists: for tools touching nested resources (a Drive file: `folders`), pass `facts.ancestors` for
  the argument values not listed themselves (`unlisted_resources` says which); for `resolved_resources`,
  pass `facts.resources`. After the provider answers, `scopes.redaction.shape_result(result,
  policy=tool.policy, results=decision.results, key=...)` filters lists and masks `redact`.
- approval: `pending_approval` → store the call with `arguments_digest(...)`, answer 202; when a human
  approves, run `decide` again with the same arguments and `approved=True` (every other rule is checked
  again: policy may have changed while the call waited).
- rate: either count first (increment the counters of `rate_limits_for(...)`) and pass `usage`, or decide
  first and then `check_rates(decision.rate_limits, usage)`. Counters are per (agent, connection, scope)
  and window; `usage` holds the counts including this call.
- data flow: after each call, store `scopes.flow.fingerprint_result(shaped, tool.policy, key)` for the agent;
  before a sink, pass `FlowContext` with the agent's fingerprints (or those of `candidates(arguments, key)`
  found in the store) and flow rules.
- untrusted session: when a tool with `tool.policy.untrusted` returns, mark the session; pass
  `SessionState(untrusted=True, policy=agent's choice, source=that tool)` on later calls.
"""

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from scopes.checks import CallFacts, FactsNeeded, amount_of, check_grant, currency_of
from scopes.constraints import Constraints, ConstraintsError, allow_list_admits, parse_constraints
from scopes.decision import Decision, FiredRule, RateLimit, ResultPolicy, combine
from scopes.flow import FlowContext, SessionState, find_flows, flow_rules, session_rules
from scopes.paths import parse_path, values_at
from scopes.tool_policy import ToolPolicy

__all__ = [
    "Decision",
    "GrantView",
    "RateUsage",
    "arguments_digest",
    "check_rates",
    "connections_for",
    "decide",
    "facts_needed",
    "rate_limits_for",
    "tools_allowed",
    "unlisted_resources",
]


@dataclass(frozen=True, slots=True)
class GrantView:
    """What policy needs to know of one grant: a scope on a connection, with its constraints.

    The constraints are parsed once, here: `parsed` is None and `invalid` says why when the stored JSON is
    not valid (every call through the grant is then refused)."""

    connection: str
    provider: str
    scope: str
    constraints: Mapping[str, Any] = field(default_factory=dict)
    parsed: Constraints | None = field(init=False, repr=False, compare=False)
    invalid: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            parsed, invalid = parse_constraints(self.constraints), None
        except ConstraintsError as exc:
            parsed, invalid = None, str(exc)
        object.__setattr__(self, "parsed", parsed)
        object.__setattr__(self, "invalid", invalid)


@dataclass(frozen=True, slots=True)
class RateUsage:
    """Calls counted in the current minute and day windows, including this one, and seconds until each
    window ends (for Retry-After)."""

    minute: int
    day: int
    minute_resets_in: float = 60.0
    day_resets_in: float = 86_400.0


def connections_for(provider: str, needed: Iterable[str], grants: Sequence[GrantView]) -> list[str]:
    """Connections of `provider` on which every scope in `needed` is granted, in name order."""
    need = set(needed)
    held: dict[str, set[str]] = {}
    for grant in grants:
        if grant.provider == provider:
            held.setdefault(grant.connection, set()).add(grant.scope)
    return sorted(name for name, scopes in held.items() if need <= scopes)


def tools_allowed(tools: Iterable[tuple[str, str, Sequence[str]]], grants: Sequence[GrantView]) -> dict[str, list[str]]:
    """Map each tool name (given as `(name, provider, scopes)`) the grants allow to its usable connections."""
    allowed: dict[str, list[str]] = {}
    for name, provider, needed in tools:
        usable = connections_for(provider, needed, grants)
        if usable:
            allowed[name] = usable
    return allowed


def _grants_used(provider: str, needed: Sequence[str], grants: Sequence[GrantView], connection: str) -> list[GrantView]:
    return [g for g in grants if g.provider == provider and g.connection == connection and g.scope in needed]


def rate_limits_for(
    provider: str, needed: Sequence[str], grants: Sequence[GrantView], connection: str
) -> list[RateLimit]:
    """The rate limits a call of a tool needing `needed` on `connection` counts against."""
    return [
        RateLimit(connection, g.scope, g.parsed.rate.per_minute, g.parsed.rate.per_day)
        for g in _grants_used(provider, needed, grants, connection)
        if g.parsed is not None and g.parsed.rate is not None
    ]


def check_rates(limits: Iterable[RateLimit], usage: Mapping[tuple[str, str], RateUsage]) -> list[FiredRule]:
    """One FiredRule per limit: denied (`rate_limited`) when the counts, including this call, exceed it.
    A limit with no counts is passed as not counted (the hub did not count it)."""
    rules = []
    for limit in limits:
        where = f"rate of the {limit.scope} grant"
        counted = usage.get(limit.key)
        if counted is None:
            rules.append(FiredRule("rate", "pass", f"{where}: not counted", "rate", limit.scope))
            continue
        if limit.per_minute is not None and counted.minute > limit.per_minute:
            wait = math.ceil(counted.minute_resets_in)
            detail = f"{where}: more than {limit.per_minute} calls per minute; retry after {wait} s"
            rules.append(FiredRule("rate", "deny", detail, "rate", limit.scope, "rate_limited"))
        elif limit.per_day is not None and counted.day > limit.per_day:
            detail = (
                f"{where}: more than {limit.per_day} calls per day; retry after {math.ceil(counted.day_resets_in)} s"
            )
            rules.append(FiredRule("rate", "deny", detail, "rate", limit.scope, "rate_limited"))
        else:
            rules.append(
                FiredRule("rate", "pass", f"{where}: {counted.minute}/min, {counted.day}/day", "rate", limit.scope)
            )
    return rules


def _retry_after(limits: Sequence[RateLimit], usage: Mapping[tuple[str, str], RateUsage]) -> int | None:
    waits = []
    for limit in limits:
        counted = usage.get(limit.key)
        if counted is None:
            continue
        if limit.per_minute is not None and counted.minute > limit.per_minute:
            waits.append(counted.minute_resets_in)
        if limit.per_day is not None and counted.day > limit.per_day:
            waits.append(counted.day_resets_in)
    return max(1, math.ceil(max(waits))) if waits else None


def unlisted_resources(
    policy: ToolPolicy, grants: Sequence[GrantView], arguments: Mapping[str, Any]
) -> dict[str, list[str]]:
    """allow-list → the argument values that a grant's list does not name itself: the values whose
    containers the hub should resolve into `CallFacts.ancestors` (a Drive file id under `folders`)."""
    wanted: dict[str, list[str]] = {}
    for grant in grants:
        if grant.parsed is None:
            continue
        for name, allowed in grant.parsed.allow_lists.items():
            for text in policy.argument_paths(name):
                for value in values_at(arguments, parse_path(text)):
                    if value is not None and not allow_list_admits(name, allowed, value):
                        wanted.setdefault(name, [])
                        if str(value) not in wanted[name]:
                            wanted[name].append(str(value))
    return wanted


_NOTHING_NEEDED = FactsNeeded()


def facts_needed(
    policy: ToolPolicy,
    grants: Sequence[GrantView],
    connection: str,
    arguments: Mapping[str, Any],
    needed: Sequence[str],
) -> FactsNeeded:
    """What the hub must resolve at the provider for the constraints of the grants this call uses: nothing
    when they set no allow-list, amount, currency or approval condition the arguments cannot answer alone."""
    used = [g for g in grants if g.connection == connection and g.scope in needed and g.parsed is not None]
    constraints = [g.parsed for g in used if g.parsed is not None]
    if all(c.empty for c in constraints):
        return _NOTHING_NEEDED
    ancestors = unlisted_resources(policy, used, arguments)
    resources = tuple(
        dict.fromkeys(name for c in constraints for name in c.allow_lists if name in policy.resolved_resources)
    )

    def wanted(limit: str) -> bool:
        # A limit on `amount` / `currency`, or an approval condition naming it.
        return any(
            getattr(c, f"max_{limit}" if limit == "amount" else limit) is not None
            or (c.approval is not None and not c.approval.always and limit in c.approval.names)
            for c in constraints
        )

    amount = not policy.read_only and (
        (wanted("amount") and amount_of(policy, arguments, CallFacts()) is None)
        or (wanted("currency") and currency_of(policy, arguments, CallFacts()) is None)
    )
    return FactsNeeded(MappingProxyType(ancestors), resources, amount)


def arguments_digest(tool: str, connection: str, arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the call's canonical JSON: what an approval is bound to, so an approved call runs with
    exactly the arguments the human saw."""
    canonical = json.dumps(
        {"tool": tool, "connection": connection, "arguments": arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def decide(
    *,
    tool: str,
    provider: str,
    needed: Sequence[str],
    grants: Sequence[GrantView],
    connection: str | None,
    policy: ToolPolicy | None = None,
    arguments: Mapping[str, Any] | None = None,
    facts: CallFacts | None = None,
    flow: FlowContext | None = None,
    session: SessionState | None = None,
    usage: Mapping[tuple[str, str], RateUsage] | None = None,
    approved: bool = False,
) -> Decision:
    """Decide whether `tool` may run, on which connection, with which changes; see the module docstring.

    Deny by default: the agent must hold every scope the tool needs on one connection of the tool's
    provider. When it may use several, it must name one; naming one it may not use is a scope denial that
    does not reveal whether that connection exists. A missing `policy` is read as an unannotated tool (the
    most restrictive defaults)."""
    usable = connections_for(provider, needed, grants)
    if not usable:
        detail = f"no grant of {', '.join(needed)} allows {tool}"
        return Decision(
            "deny", "scope_denied", detail, rules=(FiredRule("scope", "deny", detail, reason="scope_denied"),)
        )
    if connection is None:
        if len(usable) > 1:
            detail = f"'connection' is required: one of {', '.join(usable)}"
            rule = FiredRule("scope", "deny", detail, reason="invalid_arguments")
            return Decision("deny", "invalid_arguments", detail, rules=(rule,))
        connection = usable[0]
    elif connection not in usable:
        detail = f"no grant of {', '.join(needed)} on connection {connection!r}"
        return Decision(
            "deny", "scope_denied", detail, rules=(FiredRule("scope", "deny", detail, reason="scope_denied"),)
        )
    scope_rule = FiredRule("scope", "pass", f"{', '.join(needed)} granted on {connection}")
    if arguments is None:
        return Decision("allow", connection=connection, rules=(scope_rule,))

    policy = policy or ToolPolicy()
    facts = facts or CallFacts()
    rules = [scope_rule]
    notes: list[str] = []
    changes: dict[str, Any] = {}
    allow_lists: dict[str, frozenset[str]] = {}
    redact: dict[str, None] = {}
    limits: list[RateLimit] = []
    for grant in _grants_used(provider, needed, grants, connection):
        if grant.parsed is None:
            detail = f"the {grant.scope} grant's constraints are invalid ({grant.invalid}); an admin must fix them"
            rules.append(FiredRule("constraints", "deny", detail, scope=grant.scope, reason="constraint_violated"))
            continue
        c = grant.parsed
        if c.empty:
            continue
        grant_rules, grant_notes = check_grant(
            tool=tool,
            policy=policy,
            scope=grant.scope,
            constraints=c,
            arguments=arguments,
            facts=facts,
            changes=changes,
        )
        rules += grant_rules
        notes += grant_notes
        for name, entries in c.allow_lists.items():
            allow_lists[name] = allow_lists[name] & entries if name in allow_lists else entries
        redact.update(dict.fromkeys(c.redact))
        if c.rate is not None:
            limits.append(RateLimit(connection, grant.scope, c.rate.per_minute, c.rate.per_day))
    if limits and usage is not None:
        rules += check_rates(limits, usage)
    if flow is not None and policy.sink:
        flows = find_flows(arguments, flow.fingerprints, flow.key, flow.kinds)
        rules += flow_rules(flows, flow.rules, tool=tool, scopes=needed)
    if session is not None:
        rules += session_rules(session.untrusted, policy, session.policy, tool_name=tool, source=session.source)
    if approved:
        rules = [
            replace(r, effect="pass", detail=f"{r.detail}; approved") if r.effect == "approve" else r for r in rules
        ]
    limit = changes.get(policy.limit) if policy.limit else None
    return combine(
        rules,
        connection=connection,
        changes=changes,
        notes=tuple(notes),
        results=ResultPolicy(allow_lists, tuple(redact), limit),
        retry_after=_retry_after(limits, usage) if usage is not None else None,
        rate_limits=tuple(limits),
    )
