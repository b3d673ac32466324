"""Shaping a result before the agent sees it: filter lists to the allow-lists, then mask redacted data.

`shape_result(result, policy=tool.policy, results=decision.results, key=…)` does both, on the result as JSON
data (`output.model_dump(mode="json")`), and returns a copy; the input is never changed.

Filtering. For each `result_resources` path of the tool (`channels[].id` → `channels`) whose allow-list a
grant sets, the elements of the path's last list are kept only when a value at the rest of the path lies
inside the allow-list (`scopes.constraints.allow_list_admits`, with the hub's `ancestors` for items inside
allowed folders). An element with no such value is dropped: what the grant does not allow, the agent never
sees, not even its name. The agent-facing note says the list is limited, not how much was removed.

Masking. A grant's `redact` entries are labels or fields:
- a label (`pii.email`, or `financial`, which covers `financial.card`) masks the label's fields: the paths
  the tool declares in `label_fields`, and always the field names of the label's convention
  (`scopes.labels`) at any depth; `pii.email` also masks every email address inside any string;
- a bare name (`phone`) masks that field at any depth; a path (`contacts[].company`) masks that field.
Everything under a masked field is masked: strings, numbers, each element of a list, each value of an
object; null stays null; keys are never changed.

Masks are stable, so the agent can still tell records apart and follow one through several calls:
- email: the first character of the local part, `***@`, and the domain: `grace@example.com` → `g***@example.com`;
- phone (a string of digits and phone punctuation): `***` and the last two digits: `+1 555 123 4567` → `***67`;
- anything else: `[redacted:` + the first 8 hex digits of an HMAC-SHA256 of the value under `key` + `]`.
The key is the hub's secret (the same for every call), so equal values mask equally and the agent cannot
test guesses against the hash. A value that already is a mask is left as it is: redaction is idempotent.
"""

import hmac
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scopes.constraints import allow_list_admits
from scopes.decision import FiredRule, ResultPolicy
from scopes.flow import EMAIL, MASK
from scopes.labels import LABELS, conventional_label, conventional_names, covers, is_known_label, kind_of
from scopes.paths import filter_items, parse_path
from scopes.tool_policy import ToolPolicy

__all__ = ["Shaped", "filter_result", "mask_email", "mask_phone", "mask_text", "redact", "shape_result"]

MaskKind = Literal["email", "phone", "text", "auto"]
_PHONE_LIKE = re.compile(r"[\d\s+().\-/]*")
_FULL_EMAIL = re.compile(EMAIL.pattern)
_SCALARS = (int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Shaped:
    """A shaped result, the rules that changed it (for the audit and explain) and notes for the agent."""

    result: Any
    rules: tuple[FiredRule, ...]
    notes: tuple[str, ...]


def mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain.lower()}" if local else "***"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) >= 4 else "***"


def mask_text(key: bytes, value: str) -> str:
    digest = hmac.digest(key, b"mask\x1f" + value.encode("utf-8", "surrogatepass"), "sha256").hex()
    return f"[redacted:{digest[:8]}]"


def _phone_like(value: str) -> bool:
    return _PHONE_LIKE.fullmatch(value) is not None and sum(c.isdigit() for c in value) >= 4


def _mask_leaf(value: Any, kind: MaskKind, key: bytes) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "[redacted]"
    if not isinstance(value, str):
        text = str(value)
        return mask_phone(text) if kind == "phone" and isinstance(value, int) else mask_text(key, text)
    if MASK.fullmatch(value):
        return value
    if kind in ("email", "auto"):
        if kind == "auto" and _FULL_EMAIL.fullmatch(value.strip()):
            return mask_email(value.strip())
        if kind == "email" and EMAIL.search(value):
            return EMAIL.sub(lambda m: mask_email(m.group(0)), value)
    if kind in ("phone", "auto") and _phone_like(value):
        return mask_phone(value)
    return mask_text(key, value)


@dataclass(slots=True)
class _Plan:
    rooted: dict[str, tuple[MaskKind, str]]
    anywhere: dict[str, tuple[MaskKind, str]]
    conventions: dict[str, tuple[MaskKind, str]]  # label → (kind, target) for the field-name conventions
    scan_emails: str | None
    counts: dict[str, int]


def _kind(label: str) -> MaskKind:
    kind = kind_of(label)
    return "email" if kind == "email" else "phone" if kind == "phone" else "text"


def _plan(targets: Sequence[str], label_fields: Mapping[str, Sequence[str]]) -> _Plan:
    plan = _Plan({}, {}, {}, None, {})
    for target in targets:
        if is_known_label(target):
            for label in (lbl for lbl in LABELS if covers(target, lbl)):
                kind = _kind(label)
                for text in label_fields.get(label, ()):
                    path = parse_path(text)
                    (plan.anywhere if path.bare else plan.rooted).setdefault(text, (kind, target))
                if conventional_names(label):
                    plan.conventions.setdefault(label, (kind, target))
                if label == "pii.email":
                    plan.scan_emails = plan.scan_emails or target
        else:
            path = parse_path(target)
            (plan.anywhere if path.bare else plan.rooted).setdefault(target, ("auto", target))
    return plan


def _count(plan: _Plan, target: str) -> None:
    plan.counts[target] = plan.counts.get(target, 0) + 1


def _is_mapping(node: Any) -> bool:
    # JSON objects are dicts: the Mapping ABC check, slow on every leaf, only for anything else.
    return isinstance(node, dict) or (not isinstance(node, _SCALARS) and isinstance(node, Mapping))


def _mask_all(node: Any, kind: MaskKind, target: str, plan: _Plan, key: bytes) -> Any:
    if _is_mapping(node):
        return {k: _mask_all(v, kind, target, plan, key) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_mask_all(item, kind, target, plan, key) for item in node]
    if node is not None:
        _count(plan, target)
    return _mask_leaf(node, kind, key)


def _walk(node: Any, path: str, plan: _Plan, key: bytes) -> Any:
    """`node` with the plan's targets masked. `path` (`contacts[].email`) is tracked only when the plan has
    rooted paths to match."""
    if isinstance(node, str):
        if plan.scan_emails and "@" in node and EMAIL.search(node):
            _count(plan, plan.scan_emails)
            return EMAIL.sub(lambda m: mask_email(m.group(0)), node)
        return node
    if _is_mapping(node):
        out = {}
        for name, value in node.items():
            child = (f"{path}.{name}" if path else str(name)) if plan.rooted else ""
            hit = plan.rooted.get(child) or plan.anywhere.get(name)
            if hit is None and plan.conventions:
                label = conventional_label(str(name))
                hit = plan.conventions.get(label) if label else None
            out[name] = _mask_all(value, *hit, plan, key) if hit else _walk(value, child, plan, key)
        return out
    if isinstance(node, list | tuple):
        child = f"{path}[]" if plan.rooted else ""
        return [_walk(item, child, plan, key) for item in node]
    return node


def redact(
    result: Any, targets: Sequence[str], *, label_fields: Mapping[str, Sequence[str]], key: bytes
) -> tuple[Any, list[FiredRule]]:
    """Mask `targets` (labels or fields, a grant's `redact`) in `result` at any depth; see the module
    docstring. Returns the masked copy and one FiredRule per target that masked something."""
    if not targets:
        return result, []
    plan = _plan(targets, label_fields)
    masked = _walk(result, "", plan, key)
    rules = [
        FiredRule("redact", "redact", f"{n} value{'s' if n != 1 else ''} masked for {target}", target)
        for target, n in plan.counts.items()
    ]
    return masked, rules


def _admits(
    name: str, allowed: Collection[str], ancestors: Mapping[str, Collection[str]] | None
) -> Callable[[list[Any]], bool]:
    def admits(values: list[Any]) -> bool:
        return any(allow_list_admits(name, allowed, value, ancestors) for value in values)

    return admits


def filter_result(
    result: Any,
    policy: ToolPolicy,
    allow_lists: Mapping[str, Collection[str]],
    ancestors: Mapping[str, Collection[str]] | None = None,
) -> tuple[Any, list[FiredRule]]:
    """Keep only the list elements of `result` that lie inside `allow_lists` (see the module docstring)."""
    rules = []
    for text, name in (policy.result_resources or {}).items():
        allowed = allow_lists.get(name)
        if allowed is None:
            continue
        result, removed = filter_items(result, parse_path(text), _admits(name, allowed, ancestors))
        rules.append(FiredRule("filter", "filter", f"{removed} of the {text} outside {name} removed", name))
    return result, rules


def shape_result(
    result: Any,
    *,
    policy: ToolPolicy,
    results: ResultPolicy,
    key: bytes,
    ancestors: Mapping[str, Collection[str]] | None = None,
) -> Shaped:
    """Filter, then redact, `result` as `results` (a Decision's) asks. Notes tell the agent what was done."""
    if results.empty:
        return Shaped(result, (), ())
    notes = []
    result, filtered = filter_result(result, policy, results.allow_lists, ancestors)
    for rule in filtered:
        notes.append(f"results are limited to the allowed {rule.constraint}")
    result, masked = redact(result, results.redact, label_fields=policy.label_fields, key=key)
    if masked:
        notes.append(f"masked by policy: {', '.join(r.constraint for r in masked)}")
    return Shaped(result, (*filtered, *masked), tuple(dict.fromkeys(notes)))
