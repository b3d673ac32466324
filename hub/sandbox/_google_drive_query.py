"""Drive's search query language (`q=` of files.list), parsed into a predicate over sandbox files.

Supported: `'<id>' in parents`, `'<email>' in owners|writers|readers`, `name|fullText|mimeType contains '…'`,
`name|mimeType = | != '…'`, `modifiedTime|createdTime <, <=, =, !=, >, >= '<RFC 3339>'`,
`trashed|starred = | != true|false`, joined with `and`, `or`, `not` and parentheses (`not` binds tightest,
then `and`, then `or`). Anything else is Drive's 400 "Invalid Value" on `q`.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["QueryItem", "parse_query"]

_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.)*')|(\(|\))|(!=|<=|>=|=|<|>)|([A-Za-z_][A-Za-z0-9_]*))")
_TEXT_FIELDS = {"name", "fullText", "mimeType"}
_TIME_FIELDS = {"modifiedTime", "createdTime", "viewedByMeTime"}
_BOOL_FIELDS = {"trashed", "starred"}
_IN_FIELDS = {"parents", "owners", "writers", "readers"}


class QueryItem(Protocol):
    """What a query reads of a file."""

    def query_value(self, field: str) -> Any: ...


Predicate = Callable[[QueryItem], bool]


class _Invalid(ValueError):
    pass


def _tokens(q: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        match = _TOKEN.match(q, pos)
        if match is None:
            raise _Invalid(q)
        string, paren, op, word = match.groups()
        if string is not None:
            found.append(("str", re.sub(r"\\(.)", r"\1", string[1:-1])))
        elif paren is not None:
            found.append((paren, paren))
        elif op is not None:
            found.append(("op", op))
        else:
            found.append(("word", word))
        pos = match.end()
    return found


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(value) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class _Parser:
    def __init__(self, q: str) -> None:
        self.tokens = _tokens(q)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _Invalid("unexpected end")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise _Invalid("trailing tokens")
        return predicate

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.keyword("or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else lambda item: any(t(item) for t in terms)

    def conjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.keyword("and"):
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else lambda item: all(t(item) for t in terms)

    def negation(self) -> Predicate:
        if self.keyword("not"):
            inner = self.negation()
            return lambda item: not inner(item)
        token = self.peek()
        if token is not None and token[0] == "(":
            self.pos += 1
            inner = self.disjunction()
            if self.take()[0] != ")":
                raise _Invalid("unbalanced parenthesis")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, value = self.take()
        if kind == "str":  # '<value>' in <collection>
            if not self.keyword("in"):
                raise _Invalid("expected in")
            field_kind, field = self.take()
            if field_kind != "word" or field not in _IN_FIELDS:
                raise _Invalid(field)
            return lambda item: value in item.query_value(field)
        if kind != "word":
            raise _Invalid(value)
        field = value
        if self.keyword("contains"):
            operand_kind, operand = self.take()
            if field not in _TEXT_FIELDS or operand_kind != "str":
                raise _Invalid(field)
            needle = operand.lower()
            return lambda item: needle in str(item.query_value(field)).lower()
        op_kind, op = self.take()
        operand_kind, operand = self.take()
        if op_kind != "op":
            raise _Invalid(op)
        compare = _COMPARE[op]
        if field in _BOOL_FIELDS:
            if op not in ("=", "!=") or operand_kind != "word" or operand.lower() not in ("true", "false"):
                raise _Invalid(operand)
            wanted = operand.lower() == "true"
            return lambda item: compare(bool(item.query_value(field)), wanted)
        if operand_kind != "str":
            raise _Invalid(operand)
        if field in _TIME_FIELDS:
            moment = _time(operand)
            return lambda item: item.query_value(field) is not None and compare(item.query_value(field), moment)
        if field in ("name", "mimeType") and op in ("=", "!="):
            return lambda item: compare(item.query_value(field), operand)
        raise _Invalid(field)


def parse_query(q: str) -> Predicate:
    """A predicate for Drive query `q`; raises ValueError if Drive would refuse it."""
    return _Parser(q).parse()
