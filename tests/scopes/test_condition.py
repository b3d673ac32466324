"""The approval condition language parses only its grammar, never runs code, and fails safe when unsure."""

import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopes import ConditionError, parse_condition


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("amount > 2000", {"amount": 2500}, True),
        ("amount > 2000", {"amount": 2000}, False),
        ("amount >= 2000", {"amount": 2000}, True),
        ("amount < 10.5", {"amount": 10}, True),
        ("amount <= -1", {"amount": 0}, False),
        ('reason == "fraudulent"', {"reason": "fraudulent"}, True),
        ("reason == 'fraudulent'", {"reason": None}, False),
        ("reason != null", {"reason": None}, False),
        ("reason == null", {"reason": None}, True),
        ("notify == true", {"notify": True}, True),
        ("notify == true", {"notify": 1}, False),
        ("count == 1", {"count": True}, False),
        ('channel in ["C1", "C2"]', {"channel": "C2"}, True),
        ('channel not in ["C1", "C2"]', {"channel": "C2"}, False),
        ('to in ["ceo@example.com"]', {"to": ["a@example.com", "ceo@example.com"]}, True),
        ('to in ["ceo@example.com"]', {"to": []}, False),
        ("amount > 100 and currency == 'usd'", {"amount": 500, "currency": "usd"}, True),
        ("amount > 100 and currency == 'usd'", {"amount": 500, "currency": "eur"}, False),
        ("amount > 100000 or reason == 'fraudulent'", {"amount": 5, "reason": "fraudulent"}, True),
        ("not (amount > 100)", {"amount": 5}, True),
        ("not not amount > 100", {"amount": 500}, True),
    ],
)
def test_conditions_evaluate_on_the_named_arguments(text: str, values: dict[str, Any], expected: bool) -> None:
    assert parse_condition(text).evaluate(values) is expected


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("amount > 2000", {}),  # the name is not an argument of this tool
        ("amount > 2000", {"amount": None}),  # a full refund: no amount given
        ("amount > 2000", {"amount": "2500"}),  # an ordering on a string
        ("amount > 2000 and reason == 'x'", {"reason": "x"}),
        ("not amount > 2000", {}),
    ],
)
def test_what_cannot_be_decided_is_unknown_and_needs_approval(text: str, values: dict[str, Any]) -> None:
    assert parse_condition(text).evaluate(values) is None


def test_unknown_does_not_hide_a_known_answer() -> None:
    assert parse_condition("amount > 1 or reason == 'x'").evaluate({"reason": "x"}) is True
    assert parse_condition("amount > 1 and reason == 'x'").evaluate({"reason": "y"}) is False


def test_always_always_holds() -> None:
    always = parse_condition(" always ")
    assert always.always and always.evaluate({}) is True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "amount",
        "amount >",
        "amount > '5'",
        "amount > null",
        "2000 < amount",
        "amount >> 5",
        "amount = 5",
        "amount > 5 and",
        "(amount > 5",
        "amount > 5)",
        "in in [1]",
        "channel in []",
        "channel not == 1",
        "amount > 1e9",
        "amount > 0x10",
        'name == "a\\"b"',
        "__import__('os').system('id')",
        "amount.__class__ > 1",
        "len(items) > 3",
        "amount > 5; drop table",
        "lambda: 1",
        "amount > 5 " + "or amount > 5 " * 40,
        "(" * 30 + "amount > 5" + ")" * 30,
        "x" * 600,
    ],
)
def test_anything_outside_the_grammar_is_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_refusals_say_where() -> None:
    with pytest.raises(ConditionError, match="position 8"):
        parse_condition("amount ? 5")


class _Trap:
    """A value whose comparison would run code: evaluation must never call it."""

    def _boom(self, other: object) -> bool:
        raise AssertionError("evaluation ran a comparison on a foreign object")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _boom  # type: ignore[assignment]
    __hash__ = object.__hash__


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_and_never_runs(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError:
        return
    values = {name: _Trap() for name in condition.names}
    assert condition.evaluate(values) in (True, False, None)


_names = st.sampled_from(["amount", "reason", "channel", "to"])
_literals = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.text(string.ascii_letters, max_size=5).map(lambda s: f'"{s}"'),
    st.sampled_from(["true", "false", "null"]),
)
_comparisons = st.builds(
    lambda n, op, v: f"{n} {op} {v}", _names, st.sampled_from(["==", "!="]), _literals
) | st.builds(lambda n, op, v: f"{n} {op} {v}", _names, st.sampled_from(["<", "<=", ">", ">="]), st.integers(-99, 99))
_conditions = st.recursive(
    _comparisons,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=8,
)
_values = st.dictionaries(
    _names, st.one_of(st.none(), st.integers(-100, 100), st.text(max_size=3), st.booleans()), max_size=4
)


@given(_conditions, _values)
def test_every_grammatical_condition_parses_and_evaluates_to_three_values(text: str, values: dict[str, Any]) -> None:
    condition = parse_condition(text)
    assert condition.names <= {"amount", "reason", "channel", "to"}
    assert condition.evaluate(values) in (True, False, None)
