"""Cross-tool data flow: fingerprints of sensitive values, found again in a sink's arguments.

After a call, every value the agent received under a sensitive label (`scopes.labels.SENSITIVE_LABELS`) is
fingerprinted: `fingerprint(key, value, label)` is an HMAC-SHA256, under a hub secret, of the value
normalised for its label's kind, so the store never holds the values themselves. Before a *sink* runs, its
arguments are cut into candidates, each is fingerprinted the same way and looked up; a hit is a `Flow`, and
is refused (`flow_blocked`) unless the agent has a flow rule `label → sink scope or tool`.

Normalising (`normalise`). email: trimmed, lower case. phone: digits only, then the last 10 digits, so
`+1 555 123 4567`, `(555) 123-4567` and `555.123.4567` are one value. text (names, card digits, addresses):
case-folded words (`\\w+`) joined by single spaces, so punctuation and spacing do not matter.

Candidates in a sink's arguments (every string at any depth), so that a value is found exactly, in another
case, or inside a longer text:
- emails by pattern, each with the suffixes of its local part after `.`, `_`, `-`, `+`, `%` and the
  prefixes of its domain at each dot (`x.grace@example.com.au` also yields `grace@example.com`);
- phones: runs of digits and separators, and every window of consecutive digit groups holding 7 to 15
  digits (`call 555 123 4567 or 555 987 6543` yields both);
- text: the whole string, and every run of 2 to 4 consecutive words.

Limits, by design. A single-word text value (a first name, a card's last four digits) is found only as a
whole argument, never inside a longer text, or every "Grace" and "Will" in a message would be blocked; a
name of five or more words is found only whole. Values shorter than 3 characters (text) or 7 digits (phone)
are not fingerprinted. Encodings are not undone: an email spelled "grace at example dot com", split across
arguments, reversed, base64-encoded or glued to surrounding letters ("xgrace@example.comy" is another
address) is not found. Flow control stops an agent from passing data on by accident or on an injected
instruction; it cannot stop a model deliberately encoding it, which is what approval and the untrusted-
session rule are for.
"""

import hashlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from scopes.decision import Decision, FiredRule, combine
from scopes.labels import SENSITIVE_LABELS, Kind, conventional_names, covers, kind_of
from scopes.paths import parse_path, values_at
from scopes.tool_policy import ToolPolicy

__all__ = [
    "EMAIL",
    "MASK",
    "Candidate",
    "Flow",
    "FlowContext",
    "FlowOrigin",
    "SessionPolicy",
    "SessionState",
    "candidates",
    "extract_sensitive",
    "find_flows",
    "fingerprint",
    "fingerprint_result",
    "flow_decision",
    "flow_rules",
    "normalise",
    "session_decision",
    "session_rules",
]

SessionPolicy = Literal["approve", "refuse"]

# What a mask of scopes.redaction looks like; a mask is not data, so it is never fingerprinted or re-masked.
MASK = re.compile(r"[^@\s]?\*\*\*@[^@\s]*|\*\*\*\d{0,2}|\[redacted(?::[0-9a-f]{8})?\]")
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+")
_PHONE_RUN = re.compile(r"\+?\d[\d \t().\-/]{0,40}\d")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"\w+")
_NON_DIGIT = re.compile(r"\D")
_MIN_TEXT = 3
_MIN_PHONE, _MAX_PHONE, _PHONE_KEEP = 7, 15, 10
_NGRAMS = (2, 3, 4)
_MAX_VALUE_CHARS = 500


@dataclass(frozen=True, slots=True)
class FlowOrigin:
    """Where a fingerprinted value came from: its label and the tool (and connection) that returned it."""

    label: str
    tool: str
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    """A fingerprinted value found in a sink's arguments: at `argument` (`text`, `to[0]`), `whole` when the
    argument is the value itself, else found inside a longer text."""

    label: str
    source_tool: str
    argument: str
    whole: bool
    source_connection: str | None = None


@dataclass(frozen=True, slots=True)
class FlowContext:
    """What `decide` needs for data-flow rules: the agent's fingerprints (fingerprint → origin; a dict the
    hub loaded, or the hits of a lookup of `candidates(...)`), the fingerprint key, and the agent's flow
    rules as (label, sink scope or tool name) pairs. `kinds`, when given, are the kinds (`email`, `phone`,
    `text`) of the labels the agent holds fingerprints of: candidates of other kinds are not even hashed
    (most of the cost of a long text is its word runs, needed only for `text` labels)."""

    fingerprints: Mapping[str, FlowOrigin]
    key: bytes
    rules: Iterable[tuple[str, str]] = ()
    kinds: Collection[Kind] | None = None


@dataclass(frozen=True, slots=True)
class SessionState:
    """The calling session: `untrusted` once a tool with `untrusted.content` output ran in it (`source`
    names that tool), and the agent's `policy` for sinks and high-risk tools from then on."""

    untrusted: bool = False
    policy: SessionPolicy = "approve"
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: Kind
    argument: str
    whole: bool


# Normalising and fingerprinting.


def _normalise_kind(value: str, kind: Kind) -> str:
    if kind == "email":
        return value.strip().strip("<>").strip().lower()
    if kind == "phone":
        return _NON_DIGIT.sub("", value)[-_PHONE_KEEP:]
    return " ".join(_WORD.findall(value.casefold()))


def normalise(value: Any, label: str) -> str:
    """`value` normalised for `label`'s kind (see the module docstring)."""
    return _normalise_kind(str(value), kind_of(label))


class _Hmac:
    """HMAC-SHA256 under one key with its pads hashed once (RFC 2104), so each value costs two short
    SHA-256 updates instead of a full HMAC set-up: the same digests as `hmac`, a third of the time."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = block.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@lru_cache(maxsize=16)
def _mac(key: bytes) -> _Hmac:
    return _Hmac(key)


def _digest(key: bytes, kind: Kind, normalised: str) -> str:
    return _mac(key).hexdigest(f"{kind}\x1f{normalised}".encode())


def fingerprint(key: bytes, value: Any, label: str) -> str:
    """Hex HMAC-SHA256 under `key` of `value` normalised for `label`. Labels of one kind share fingerprints
    (the store keeps the label beside each): a name found in text is the same text whatever its label."""
    kind = kind_of(label)
    return _digest(key, kind, _normalise_kind(str(value), kind))


# What a result holds.


_SCALARS = (int, float, bool, type(None))


def _leaves(value: Any, into: list[str]) -> None:
    """The strings and integers (as text) in `value`, at any depth, in order."""
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        into.append(str(value))
    elif isinstance(value, list | tuple):
        for item in value:
            _leaves(item, into)
    elif not isinstance(value, _SCALARS) and isinstance(value, Mapping):
        for item in value.values():
            _leaves(item, into)


def _scan(
    node: Any,
    names: Mapping[str, frozenset[str]],
    found: frozenset[str],
    values: dict[str, list[str]],
    strings: list[str],
) -> None:
    """One depth-first pass over a result: every string in it (where emails are looked for), and for each
    label the leaves under the keys that name it at any depth. Below a key that named a label, that label
    looks no further (`found`); the others, and the strings, still do."""
    if isinstance(node, str):
        strings.append(node)
    elif isinstance(node, list | tuple):
        for item in node:
            _scan(item, names, found, values, strings)
    elif not isinstance(node, _SCALARS) and isinstance(node, Mapping):
        for key, value in node.items():
            named = names.get(key)
            if named and (named := named - found):
                leaves: list[str] = []
                _leaves(value, leaves)
                for label in named:
                    values[label].extend(leaves)
                _scan(value, names, found | named, values, strings)
            else:
                _scan(value, names, found, values, strings)


@lru_cache(maxsize=256)
def _names(fields: tuple[tuple[str, tuple[str, ...]], ...]) -> Mapping[str, frozenset[str]]:
    """Field name -> the labels it names: each label's bare declared paths and its convention's names."""
    names: dict[str, set[str]] = {}
    for label, paths in fields:
        for name in {p for p in paths if parse_path(p).bare} | set(conventional_names(label)):
            names.setdefault(name, set()).add(label)
    return {name: frozenset(labels) for name, labels in names.items()}


def extract_sensitive(
    result: Any, label_fields: Mapping[str, Sequence[str]], labels: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """The (label, value) pairs of sensitive data in `result`, deduplicated.

    For each sensitive label among `labels` (default: the keys of `label_fields`), the values at its
    declared paths and at the field names of its convention; for `pii.email`, also every email address in
    any string of the result. Call it on what the agent receives (after filtering and redaction: a masked
    value cannot flow on)."""
    wanted = [label for label in (label_fields if labels is None else labels) if label in SENSITIVE_LABELS]
    named = tuple((label, tuple(label_fields.get(label, ()))) for label in wanted if kind_of(label) != "email")
    at_names: dict[str, list[str]] = {label: [] for label, _ in named}
    strings: list[str] = []
    _scan(result, _names(named), frozenset(), at_names, strings)
    found: dict[tuple[str, str], str] = {}
    for label in wanted:
        kind = kind_of(label)
        if kind == "email":  # every address in any string: the label's fields are among them
            # The pattern tries every position of a string; one without an "@" is skipped whole.
            values = [m.group(0) for text in strings if "@" in text for m in EMAIL.finditer(text)]
        else:
            values = at_names[label]
            for path in map(parse_path, label_fields.get(label, ())):
                if not path.bare:
                    _leaves(list(values_at(result, path)), values)
        for value in values:
            if len(value) > _MAX_VALUE_CHARS or MASK.fullmatch(value):
                continue
            norm = _normalise_kind(value, kind)
            if (kind == "phone" and len(norm) < _MIN_PHONE) or (kind == "text" and len(norm) < _MIN_TEXT):
                continue
            if kind == "email" and "@" not in norm:
                continue
            found.setdefault((label, norm), value)
    return [(label, value) for (label, _), value in found.items()]


def fingerprint_result(result: Any, policy: ToolPolicy, key: bytes) -> dict[str, str]:
    """fingerprint → label for every sensitive value in a tool's result: what the hub stores per agent."""
    return {
        fingerprint(key, value, label): label
        for label, value in extract_sensitive(result, policy.label_fields, policy.labels)
    }


# What a sink's arguments hold.


def _email_candidates(text: str) -> Iterator[str]:
    for match in EMAIL.finditer(text):
        local, domain = match.group(0).lower().rsplit("@", 1)
        domain = domain.rstrip(".-")
        labels = domain.split(".")
        domains = [".".join(labels[:n]) for n in range(len(labels), 1, -1)]
        starts = [0] + [i + 1 for i, c in enumerate(local) if c in "._%+-" and i + 1 < len(local)]
        for start in starts:
            for dom in domains:
                yield f"{local[start:]}@{dom}"


def _phone_candidates(text: str) -> Iterator[str]:
    for match in _PHONE_RUN.finditer(text):
        groups = _DIGITS.findall(match.group(0))
        for i in range(len(groups)):
            digits = ""
            for group in groups[i:]:
                digits += group
                if len(digits) > _MAX_PHONE:
                    break
                if len(digits) >= _MIN_PHONE:
                    yield digits[-_PHONE_KEEP:]


def _text_candidates(text: str) -> Iterator[tuple[str, bool]]:
    words = _WORD.findall(text.casefold())
    whole = " ".join(words)
    if len(whole) >= _MIN_TEXT:
        yield whole, True
    for n in _NGRAMS:
        if n >= len(words):
            break
        for i in range(len(words) - n + 1):
            yield " ".join(words[i : i + n]), False


def _argument_strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _argument_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _argument_strings(item, f"{path}[{i}]")


def _candidate_digests(
    arguments: Mapping[str, Any], key: bytes, kinds: Collection[Kind] | None
) -> Iterator[tuple[str, Kind, str, bool]]:
    mac = _mac(key)
    seen: set[tuple[str, str]] = set()
    emails, phones, texts = (kinds is None or k in kinds for k in ("email", "phone", "text"))
    for argument, text in _argument_strings(arguments, ""):
        found: list[tuple[Kind, str, bool]] = []
        if emails and "@" in text:
            stripped = text.strip().lower()
            found += [("email", email, email == stripped) for email in _email_candidates(text)]
        if phones:
            as_phone = _NON_DIGIT.sub("", text)[-_PHONE_KEEP:] if _PHONE_RUN.fullmatch(text.strip()) else None
            found += [("phone", phone, phone == as_phone) for phone in _phone_candidates(text)]
        if texts:
            found += [("text", words, whole) for words, whole in _text_candidates(text)]
        for kind, norm, whole in found:
            if (kind, norm) not in seen:
                seen.add((kind, norm))
                yield mac.hexdigest(f"{kind}\x1f{norm}".encode()), kind, argument, whole


def candidates(arguments: Mapping[str, Any], key: bytes, kinds: Collection[Kind] | None = None) -> dict[str, Candidate]:
    """fingerprint → where it was cut from, for every candidate value in `arguments` (see the module
    docstring). A hub whose fingerprints live in a database looks these keys up and passes the hits as
    `FlowContext.fingerprints`."""
    return {
        digest: Candidate(kind, argument, whole)
        for digest, kind, argument, whole in _candidate_digests(arguments, key, kinds)
    }


def find_flows(
    arguments: Mapping[str, Any],
    fingerprints: Mapping[str, FlowOrigin],
    key: bytes,
    kinds: Collection[Kind] | None = None,
) -> list[Flow]:
    """The fingerprinted values in a sink's `arguments`: exactly, in another case, or inside longer text."""
    if not fingerprints:
        return []
    flows: dict[tuple[str, str, str], Flow] = {}
    for digest, kind, argument, whole in _candidate_digests(arguments, key, kinds):
        origin = fingerprints.get(digest)
        if origin is None or kind_of(origin.label) != kind:
            continue
        flow = Flow(origin.label, origin.tool, argument, whole, origin.connection)
        flows.setdefault((flow.label, flow.source_tool, flow.argument), flow)
    return list(flows.values())


# Decisions.


def _permitted(flow: Flow, rules: Iterable[tuple[str, str]], tool: str, scopes: Sequence[str]) -> bool:
    return any(covers(label, flow.label) and (target == tool or target in scopes) for label, target in rules)


def flow_rules(
    flows: Sequence[Flow], rules: Iterable[tuple[str, str]], *, tool: str, scopes: Sequence[str]
) -> list[FiredRule]:
    """One FiredRule per flow: denied (`flow_blocked`) unless a rule allows `label → tool or scope`."""
    rules = list(rules)
    fired = []
    for flow in flows:
        where = "is" if flow.whole else "contains"
        if _permitted(flow, rules, tool, scopes):
            fired.append(
                FiredRule(
                    "flow",
                    "pass",
                    f"argument {flow.argument!r} {where} {flow.label} data from "
                    f"{flow.source_tool}, allowed by a flow rule",
                    flow.label,
                )
            )
            continue
        sink = scopes[-1] if scopes else tool
        fired.append(
            FiredRule(
                "flow",
                "deny",
                f"argument {flow.argument!r} {where} {flow.label} data returned by {flow.source_tool}; "
                f"{tool} may not send it on (an admin can add the flow rule {flow.label} → {sink})",
                flow.label,
                reason="flow_blocked",
            )
        )
    return fired


def flow_decision(
    flows: Sequence[Flow], rules: Iterable[tuple[str, str]], *, tool: str, scopes: Sequence[str] = ()
) -> Decision:
    """Refuse (`flow_blocked`, naming the label and the tool the value came from) unless every flow is
    allowed by a rule (label, target): the label, or a label above it (`pii` … `pii.email`), flowing to the
    sink tool's name or one of its scopes."""
    return combine(flow_rules(flows, rules, tool=tool, scopes=scopes))


def session_rules(
    session_untrusted: bool,
    tool: ToolPolicy,
    policy: SessionPolicy,
    *,
    tool_name: str = "this tool",
    source: str | None = None,
) -> list[FiredRule]:
    if not session_untrusted:
        return []
    if not (tool.sink or tool.risk == "high"):
        return [FiredRule("untrusted_session", "pass", f"the session is untrusted; {tool_name} is no sink")]
    since = f" (it read untrusted content through {source})" if source else " (it read untrusted content)"
    if policy == "refuse":
        detail = f"{tool_name} cannot run in this session{since}: start a new session for it"
        return [FiredRule("untrusted_session", "deny", detail, reason="flow_blocked")]
    return [FiredRule("untrusted_session", "approve", f"{tool_name} needs a human's approval in this session{since}")]


def session_decision(
    session_untrusted: bool,
    tool: ToolPolicy,
    policy: SessionPolicy,
    *,
    tool_name: str = "this tool",
    source: str | None = None,
) -> Decision:
    """In an untrusted session, a sink or high-risk tool waits for approval (`approve`) or is refused
    (`refuse`, answered `flow_blocked`); other tools, and every tool in a trusted session, are allowed."""
    return combine(session_rules(session_untrusted, tool, policy, tool_name=tool_name, source=source))
