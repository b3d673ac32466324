"""The approval condition language: when a grant's call must wait for a human.

A grant's `approval` is `"always"` or a condition over the call's named arguments, parsed here into a small
tree of comparisons. Nothing is ever evaluated as Python: the parser accepts only this grammar, and
evaluation compares plain numbers, strings, booleans and null, checking types before any comparison.

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" condition ")" | comparison
    comparison := name ("==" | "!=") literal
                | name ("<" | "<=" | ">" | ">=") number
                | name ["not"] "in" "[" literal ("," literal)* "]"
    literal    := number | string | true | false | null
    number     := -?[0-9]+(.[0-9]+)?          string := "…" or '…' (no escapes)

Examples: `amount > 2000`, `amount >= 100000 or reason == "fraudulent"`, `channel not in ["C1", "C2"]`.

Names. A name is a tool argument; `amount` and `currency` mean the call's amount and currency as the tool
declares them (`@tool(amount=…)`, which may be a sum over invoice lines) or as the hub resolved them.

Three-valued, failing safe. A comparison is *unknown* when its name is not an argument of the tool, when the
amount or currency could not be determined (a full refund names no amount), or when an ordering compares a
non-number. `not`, `and`, `or` follow Kleene logic, and a condition that is unknown as a whole requires
approval, like one that holds. An argument that is present but null equals only null: `reason == "fraudulent"`
is false when no reason is given, but `amount > 2000` is unknown when no amount is. When an argument is a
list, a comparison holds if it holds for any element (and never for an empty list).

Limits: 500 characters, 32 comparisons, 50 values in a list, 20 levels of `not` and parentheses.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["ALWAYS", "Condition", "ConditionError", "parse_condition"]

Value = int | float | str | bool | None
Op = Literal["==", "!=", "<", "<=", ">", ">="]

_MAX_CHARS = 500
_MAX_COMPARISONS = 32
_MAX_VALUES = 50
_MAX_DEPTH = 20
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?[0-9]{1,30}(?:\.[0-9]{1,30})?)(?![A-Za-z0-9_.])
      | (?P<string>"[^"\\\n]{0,200}"|'[^'\\\n]{0,200}')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]{0,63})(?![A-Za-z0-9_])
      | (?P<op>==|!=|<=|>=|<|>)
      | (?P<punct>[()\[\],])
    )""",
    re.VERBOSE,
)


class ConditionError(ValueError):
    """The text is not a condition of this language."""


@dataclass(frozen=True, slots=True)
class Compare:
    name: str
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Not:
    operand: "Node"


@dataclass(frozen=True, slots=True)
class All:
    operands: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple["Node", ...]


Node = Compare | Member | Not | All | AnyOf


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed `approval`: `root` None means `always`."""

    source: str
    root: Node | None
    names: frozenset[str]

    @property
    def always(self) -> bool:
        return self.root is None

    def evaluate(self, values: Mapping[str, Any]) -> bool | None:
        """True (approval needed), False (not needed) or None (unknown: approval needed too).

        `values` maps names to the call's values; a name absent from it is unknown, a name mapped to None is
        null."""
        return True if self.root is None else _eval(self.root, values)


ALWAYS: Final = Condition("always", None, frozenset())


def parse_condition(text: str) -> Condition:
    """Parse an approval condition; raises ConditionError saying where it goes wrong."""
    if not isinstance(text, str):
        raise ConditionError("an approval condition must be a string")
    source = text.strip()
    if source == "always":
        return ALWAYS
    if not source:
        raise ConditionError('an approval condition is "always" or a comparison like "amount > 2000"')
    if len(source) > _MAX_CHARS:
        raise ConditionError(f"an approval condition is limited to {_MAX_CHARS} characters")
    parser = _Parser(_tokens(source))
    root = parser.condition(0)
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek_text()} after a complete condition")
    return Condition(source, root, frozenset(parser.names))


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ConditionError(f"unexpected character {text[start]!r} at position {start + 1}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.comparisons = 0
        self.names: set[str] = set()

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_text(self) -> str:
        token = self.peek()
        return "the end" if token is None else f"{token[1]!r} at position {token[2] + 1}"

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "name" and token[1] == word

    def is_punct(self, punct: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "punct" and token[1] == punct

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ConditionError("the condition ends too early")
        self.pos += 1
        return token

    def expect_punct(self, punct: str) -> None:
        if not self.is_punct(punct):
            raise ConditionError(f"expected {punct!r}, found {self.peek_text()}")
        self.pos += 1

    def condition(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise ConditionError(f"the condition nests deeper than {_MAX_DEPTH} levels")
        operands = [self.conjunction(depth)]
        while self.is_word("or"):
            self.pos += 1
            operands.append(self.conjunction(depth))
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def conjunction(self, depth: int) -> Node:
        operands = [self.negation(depth)]
        while self.is_word("and"):
            self.pos += 1
            operands.append(self.negation(depth))
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    def negation(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise ConditionError(f"the condition nests deeper than {_MAX_DEPTH} levels")
        if self.is_word("not"):
            self.pos += 1
            return Not(self.negation(depth + 1))
        if self.is_punct("("):
            self.pos += 1
            inner = self.condition(depth + 1)
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Node:
        kind, name, at = self.take()
        if kind != "name" or name in _KEYWORDS:
            raise ConditionError(f"expected an argument name at position {at + 1}, found {name!r}")
        self.comparisons += 1
        if self.comparisons > _MAX_COMPARISONS:
            raise ConditionError(f"a condition has at most {_MAX_COMPARISONS} comparisons")
        self.names.add(name)
        negated = False
        if self.is_word("not"):
            self.pos += 1
            negated = True
            if not self.is_word("in"):
                raise ConditionError(f"expected 'in' after '{name} not', found {self.peek_text()}")
        if self.is_word("in"):
            self.pos += 1
            return Member(name, self.value_list(), negated)
        kind, op, at = self.take()
        if kind != "op":
            raise ConditionError(f"expected a comparison (==, !=, <, <=, >, >=, in) after {name!r}, found {op!r}")
        value = self.literal()
        if op in ("<", "<=", ">", ">=") and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise ConditionError(f"{op} compares with a number, not {value!r}")
        return Compare(name, op, value)  # type: ignore[arg-type]  # op is one of the six the token allows

    def value_list(self) -> tuple[Value, ...]:
        self.expect_punct("[")
        values = [self.literal()]
        while self.is_punct(","):
            self.pos += 1
            values.append(self.literal())
            if len(values) > _MAX_VALUES:
                raise ConditionError(f"a list has at most {_MAX_VALUES} values")
        self.expect_punct("]")
        return tuple(values)

    def literal(self) -> Value:
        kind, text, at = self.take()
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "string":
            return text[1:-1]
        if kind == "name" and text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text]
        raise ConditionError(f"expected a number, a quoted string, true, false or null at position {at + 1}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Value) -> bool:
    # Type-checked equality: True is not 1, "1" is not 1.
    if right is None or isinstance(right, bool):
        return left is right
    if _number(right):
        return _number(left) and left == right
    return isinstance(left, str) and left == right


def _compare_one(left: Any, op: Op, right: Value) -> bool | None:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if not _number(left) or not _number(right):
        return None
    assert isinstance(left, int | float) and isinstance(right, int | float)
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _any(results: list[bool | None]) -> bool | None:
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


_MISSING = object()


def _eval(node: Node, values: Mapping[str, Any]) -> bool | None:
    if isinstance(node, Compare | Member):
        value = values.get(node.name, _MISSING)
        if value is _MISSING:
            return None
        items = list(value) if isinstance(value, list | tuple) else [value]
        if isinstance(node, Compare):
            return _any([_compare_one(item, node.op, node.value) for item in items])
        return _any([any(_equal(item, v) for v in node.values) != node.negated for item in items])
    if isinstance(node, Not):
        inner = _eval(node.operand, values)
        return None if inner is None else not inner
    results = [_eval(operand, values) for operand in node.operands]
    if isinstance(node, All):
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    return _any(results)
