"""A small subset of Stripe's search query language, for `GET /v1/customers/search`.

    query   := clause ((" AND " | " OR ") clause)*       one connective only, at most 10 clauses
    clause  := ["-"] field op value
    field   := name | "metadata[" quoted "]"
    op      := ":" (exact, case-insensitive) | "~" (substring, 3+ characters) | ">" | "<" | ">=" | "<="
    value   := 'text' | "text" | integer

Numeric comparisons apply to `created`; `:` and `~` to the text fields.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from hub.sandbox._stripe_params import StripeApiError

__all__ = ["compile_query"]

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[\s*(?:'[^']*'|"[^"]*")\s*\]|[a-z_]+)
    \s*(?P<op>>=|<=|:|~|>|<)\s*
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+)
    \s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"(AND|OR)\s+")
_UNPARSED = (
    'We were unable to parse your search query. Try using the format `metadata["key"]:"value"` to query '
    'for metadata or `key:"value"` to query for other fields.'
)
Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


def _error(message: str) -> StripeApiError:
    return StripeApiError(400, message, param="query")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1]) if text[:1] in "'\"" else text


def _clause(match: re.Match[str], resource: str, fields: frozenset[str]) -> Predicate:
    field, op, raw = match["field"], match["op"], match["value"]
    quoted = raw[:1] in "'\""
    value = _unquote(raw)
    if field.startswith("metadata["):
        key = _unquote(field[len("metadata[") : -1].strip())

        def read(record: Record) -> Any:
            return (record.get("metadata") or {}).get(key)

    elif field in fields:

        def read(record: Record) -> Any:
            return record.get(field)

    else:
        raise _error(
            f"Field `{field}` is an unsupported search field for resource `{resource}`. See "
            f"http://stripe.com/docs/search#query-fields-for-{resource} for a list of supported fields."
        )
    test = _test(field, op, value, quoted)
    if match["neg"]:
        return lambda r: not test(read(r))
    return lambda r: test(read(r))


def _test(field: str, op: str, value: str, quoted: bool) -> Callable[[Any], bool]:
    """How one field's value is checked against the clause's value."""
    if op in (">", "<", ">=", "<="):
        if quoted or field != "created":
            raise _error(f"The `{op}` operator is only supported on numeric fields, such as `created`.")
        limit = int(value)
        compare = {">": int.__gt__, "<": int.__lt__, ">=": int.__ge__, "<=": int.__le__}[op]

        def numeric(actual: Any) -> bool:
            return isinstance(actual, int) and bool(compare(actual, limit))

        return numeric
    if op == "~":
        if len(value) < 3:
            raise _error("Substring matching `~` requires a value of at least 3 characters.")
        needle = value.lower()

        def contains(actual: Any) -> bool:
            return needle in str(actual or "").lower()

        return contains
    wanted = value.lower()

    def equals(actual: Any) -> bool:
        return actual is not None and str(actual).lower() == wanted

    return equals


def compile_query(query: str, *, resource: str, fields: frozenset[str]) -> Predicate:
    """The predicate `query` describes over records of `resource`, or Stripe's 400 explaining why not."""
    clauses: list[Predicate] = []
    joins: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise _error(_UNPARSED)
        clauses.append(_clause(match, resource, fields))
        position = match.end()
        if position == len(query):
            break
        join = _JOIN.match(query, position)
        if join is None:
            raise _error(_UNPARSED)
        joins.add(join[1])
        position = join.end()
    if len(joins) > 1:
        raise _error("Queries may not combine `AND` and `OR`; use one of them throughout.")
    if len(clauses) > 10:
        raise _error("Queries may contain at most 10 clauses.")
    if joins == {"OR"}:
        return lambda r: any(c(r) for c in clauses)
    return lambda r: all(c(r) for c in clauses)
