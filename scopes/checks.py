"""The argument checks of one grant's constraints, before the provider is called: each a list of FiredRules.

`decide` runs these for every grant a call uses; they are public so tests and the admin page can run one
rule alone. Inputs are the tool's `ToolPolicy`, the validated arguments as plain data
(`args.model_dump()`), and `CallFacts`: what the hub looked up because the arguments cannot say it.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeGuard

from scopes.constraints import Constraints, allow_list_admits
from scopes.decision import FiredRule
from scopes.paths import Path, parse_path, values_at
from scopes.tool_policy import ToolPolicy

__all__ = ["CallFacts", "FactsNeeded", "amount_of", "check_grant", "currency_of"]

_DENIED = "constraint_violated"


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the hub resolved before deciding, where arguments do not tell (all optional; absent → unknown):

    - `ancestors`: resource id → ids of every container it lies inside (a Drive file's folders up to the
      root), so `folders` admits what is inside an allowed folder;
    - `resources`: allow-list → the values of a `resolved_resources` allow-list (a reply's recipients);
    - `amount`, `currency`: the call's amount and currency when the arguments do not give them (a full
      refund: the charge's refundable amount and currency; finalizing an invoice: its total)."""

    ancestors: Mapping[str, Collection[str]] = field(default_factory=lambda: MappingProxyType({}))
    resources: Mapping[str, Sequence[str]] = field(default_factory=lambda: MappingProxyType({}))
    amount: int | float | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class FactsNeeded:
    """What the hub must look up at the provider before deciding (`scopes.policy.facts_needed`):

    - `ancestors`: allow-list → argument values not listed themselves, whose containers to resolve
      (`{"folders": ["<file id>"]}`: the Drive folders the file lies in, up to the root);
    - `resources`: the `resolved_resources` allow-lists a grant sets (`customers`: the charge's customer);
    - `amount`: the call's amount and currency, which its arguments do not give (a full refund)."""

    ancestors: Mapping[str, Sequence[str]] = field(default_factory=lambda: MappingProxyType({}))
    resources: tuple[str, ...] = ()
    amount: bool = False

    def __bool__(self) -> bool:
        return bool(self.ancestors or self.resources or self.amount)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def amount_of(policy: ToolPolicy, arguments: Mapping[str, Any], facts: CallFacts) -> int | float | None:
    """The call's amount: the tool's declared `amount` path (a sum when it runs through lists, each term
    times its `*factor` sibling), else `facts.amount`; None when neither can say."""
    if policy.amount is None:
        return facts.amount
    text, _, factor = policy.amount.partition("*")
    path = parse_path(text)
    last, each = path.segments[-1]
    parents = values_at(arguments, Path(text, path.segments[:-1])) if len(path.segments) > 1 else [arguments]
    total: int | float = 0
    seen = False
    for parent in parents:
        if not isinstance(parent, Mapping):
            return facts.amount
        value = parent.get(last)
        if value is None and not each:
            return facts.amount
        terms = value if isinstance(value, list | tuple) else [value]
        times = parent.get(factor, 1) if factor else 1
        for term in terms:
            if not _number(term) or not _number(times):
                return facts.amount
            total += term * times
            seen = True
    return total if seen or path.has_each else facts.amount


def currency_of(policy: ToolPolicy, arguments: Mapping[str, Any], facts: CallFacts) -> str | None:
    """The call's currency (lower case): the tool's declared `currency` argument, else `facts.currency`."""
    if policy.currency is not None:
        for value in values_at(arguments, parse_path(policy.currency)):
            if isinstance(value, str) and value:
                return value.lower()
    return facts.currency.lower() if facts.currency else None


def _allow_list_rules(
    tool: str, policy: ToolPolicy, scope: str, c: Constraints, arguments: Mapping[str, Any], facts: CallFacts
) -> list[FiredRule]:
    rules = []
    for name, allowed in c.allow_lists.items():
        where = f"constraint {name!r} of the {scope} grant"
        if not policy.annotated:
            detail = f"{where}: {tool} does not declare the resources it touches, so it cannot be checked"
            rules.append(FiredRule("allow_list", "deny", detail, name, scope, _DENIED))
            continue
        if not policy.touches(name):
            rules.append(FiredRule("allow_list", "pass", f"{where} does not apply to {tool}", name, scope))
            continue
        denial = None
        for text in policy.argument_paths(name):
            for value in values_at(arguments, parse_path(text)):
                if value is not None and not allow_list_admits(name, allowed, value, facts.ancestors):
                    denial = f"{where}: argument {text!r} = {_show(value)} is outside the allowed {name}"
                    break
            if denial:
                break
        if denial is None and name in policy.resolved_resources:
            resolved = facts.resources.get(name)
            if resolved is None:
                denial = f"{where}: the {name} {tool} would reach could not be determined"
            else:
                outside = [v for v in resolved if not allow_list_admits(name, allowed, v, facts.ancestors)]
                if outside:
                    denial = f"{where}: {tool} would reach {_show(outside[0])}, outside the allowed {name}"
        if denial:
            rules.append(FiredRule("allow_list", "deny", denial, name, scope, _DENIED))
        elif policy.result_paths(name):
            rules.append(
                FiredRule("allow_list", "filter", f"{where}: results limited to the allowed {name}", name, scope)
            )
        else:
            rules.append(FiredRule("allow_list", "pass", f"{where}: arguments inside the allowed {name}", name, scope))
    return rules


def _limit_rules(
    policy: ToolPolicy, scope: str, c: Constraints, arguments: Mapping[str, Any], changes: dict[str, Any]
) -> tuple[list[FiredRule], list[str]]:
    if c.max_results is None:
        return [], []
    where = f"max_results of the {scope} grant"
    if policy.limit is None:
        return [
            FiredRule("max_results", "pass", f"{where} does not apply: no page-size argument", "max_results", scope)
        ], []
    current = changes.get(policy.limit, arguments.get(policy.limit))
    if _number(current) and current <= c.max_results:
        return [
            FiredRule(
                "max_results",
                "pass",
                f"{where}: {policy.limit}={current} is within {c.max_results}",
                "max_results",
                scope,
            )
        ], []
    changes[policy.limit] = c.max_results
    detail = f"{where}: {policy.limit} lowered from {_show(current)} to {c.max_results}"
    note = f"{policy.limit} was lowered to {c.max_results}, the most this agent may fetch per call"
    return [FiredRule("max_results", "clamp", detail, "max_results", scope)], [note]


def _amount_rules(
    tool: str, policy: ToolPolicy, scope: str, c: Constraints, arguments: Mapping[str, Any], facts: CallFacts
) -> list[FiredRule]:
    rules = []
    unit = "the currency's smallest unit" if policy.amount_unit == "minor" else "whole currency units"
    if c.max_amount is not None:
        where = f"max_amount of the {scope} grant"
        amount = None if policy.read_only else amount_of(policy, arguments, facts)
        if policy.read_only:
            rules.append(FiredRule("max_amount", "pass", f"{where} does not apply to a read", "max_amount", scope))
        elif amount is None:
            detail = f"{where}: the amount of this {tool} call could not be determined; give it explicitly"
            rules.append(FiredRule("max_amount", "deny", detail, "max_amount", scope, _DENIED))
        elif amount > c.max_amount:
            detail = f"{where}: amount {amount:g} exceeds {c.max_amount:g} ({unit})"
            rules.append(FiredRule("max_amount", "deny", detail, "max_amount", scope, _DENIED))
        else:
            rules.append(
                FiredRule("max_amount", "pass", f"{where}: amount {amount:g} ≤ {c.max_amount:g}", "max_amount", scope)
            )
    if c.currency is not None:
        where = f"currency of the {scope} grant"
        currency = None if policy.read_only else currency_of(policy, arguments, facts)
        if policy.read_only:
            rules.append(FiredRule("currency", "pass", f"{where} does not apply to a read", "currency", scope))
        elif currency is None:
            detail = f"{where}: the currency of this {tool} call could not be determined"
            rules.append(FiredRule("currency", "deny", detail, "currency", scope, _DENIED))
        elif currency not in c.currency:
            detail = f"{where}: {currency!r} is not an allowed currency ({', '.join(c.currency)})"
            rules.append(FiredRule("currency", "deny", detail, "currency", scope, _DENIED))
        else:
            rules.append(FiredRule("currency", "pass", f"{where}: {currency!r} allowed", "currency", scope))
    return rules


def _property_rules(
    tool: str, policy: ToolPolicy, scope: str, c: Constraints, arguments: Mapping[str, Any]
) -> list[FiredRule]:
    if c.allowed_properties is None:
        return []
    where = f"allowed_properties of the {scope} grant"
    if policy.read_only:
        return [
            FiredRule("allowed_properties", "pass", f"{where} does not apply to a read", "allowed_properties", scope)
        ]
    if policy.properties is None:
        detail = f"{where}: {tool} does not declare which arguments set properties, so it cannot be checked"
        return [FiredRule("allowed_properties", "deny", detail, "allowed_properties", scope, _DENIED)]
    given = [p for p in policy.properties if arguments.get(p) not in (None, "", [], {})]
    refused = [p for p in given if p not in c.allowed_properties]
    if refused:
        names = ", ".join(repr(p) for p in refused)
        detail = f"{where}: propert{'ies' if len(refused) > 1 else 'y'} {names} may not be set"
        return [FiredRule("allowed_properties", "deny", detail, "allowed_properties", scope, _DENIED)]
    return [
        FiredRule("allowed_properties", "pass", f"{where}: every property set is allowed", "allowed_properties", scope)
    ]


def _approval_rules(
    tool: str, policy: ToolPolicy, scope: str, c: Constraints, arguments: Mapping[str, Any], facts: CallFacts
) -> list[FiredRule]:
    condition = c.approval
    if condition is None:
        return []
    where = f"approval of the {scope} grant"
    if condition.always:
        return [FiredRule("approval", "approve", f"{where}: every call needs a human's approval", "approval", scope)]
    values = dict(arguments)
    for name, value in (
        ("amount", amount_of(policy, arguments, facts)),
        ("currency", currency_of(policy, arguments, facts)),
    ):
        declared = policy.amount if name == "amount" else policy.currency
        if value is not None:
            values[name] = value
        elif declared is not None or values.get(name) is None:
            values.pop(name, None)  # unknown, not null: a full refund has an amount, we just do not know it
    verdict = condition.evaluate(values)
    if verdict is True:
        return [FiredRule("approval", "approve", f"{where}: `{condition.source}` holds", "approval", scope)]
    if verdict is None:
        unknown = sorted(n for n in condition.names if n not in values)
        why = f" ({', '.join(unknown)} unknown for {tool})" if unknown else ""
        detail = f"{where}: `{condition.source}` cannot be decided{why}, so a human must approve"
        return [FiredRule("approval", "approve", detail, "approval", scope)]
    return [FiredRule("approval", "pass", f"{where}: `{condition.source}` does not hold", "approval", scope)]


def check_grant(
    *,
    tool: str,
    policy: ToolPolicy,
    scope: str,
    constraints: Constraints,
    arguments: Mapping[str, Any],
    facts: CallFacts,
    changes: dict[str, Any],
) -> tuple[list[FiredRule], list[str]]:
    """Every argument rule of one grant, in order: allow-lists, max_results (recording clamps in `changes`,
    shared across grants so the lowest wins), max_amount and currency, allowed_properties, approval.
    Returns the rules and the agent-facing notes."""
    c = constraints
    rules = _allow_list_rules(tool, policy, scope, c, arguments, facts)
    limit_rules, notes = _limit_rules(policy, scope, c, arguments, changes)
    rules += limit_rules
    rules += _amount_rules(tool, policy, scope, c, arguments, facts)
    rules += _property_rules(tool, policy, scope, c, arguments)
    rules += _approval_rules(tool, policy, scope, c, arguments, facts)
    return rules, notes
