"""A grant's constraints JSON is parsed strictly: typos and wrong values are refused at grant time, by name."""

import pytest

from scopes import ConstraintsError, parse_constraints
from scopes.constraints import allow_list_admits

FULL = {
    "folders": ["1AbC"],
    "channels": ["C0123"],
    "recipients_domain": ["Example.com", "*.example.org"],
    "pipelines": ["default"],
    "object_ids": ["51"],
    "customers": ["cus_1"],
    "max_results": 50,
    "max_amount": 5000,
    "currency": "USD",
    "allowed_properties": ["firstname"],
    "redact": ["pii.email", "phone", "contacts[].company"],
    "approval": "amount > 2000",
    "rate": {"per_minute": 10, "per_day": 500},
}


def test_empty_constraints_constrain_nothing() -> None:
    for raw in ({}, None):
        parsed = parse_constraints(raw)
        assert parsed.empty and parsed.allow_lists == {} and parsed.approval is None


def test_every_documented_key_parses_and_normalises() -> None:
    parsed = parse_constraints(FULL)
    assert parsed.allow_lists["channels"] == frozenset({"C0123"})
    assert parsed.recipients_domain == ("example.com", "*.example.org")
    assert parsed.currency == ("usd",)
    assert parsed.approval is not None and parsed.approval.source == "amount > 2000"
    assert parsed.rate is not None and (parsed.rate.per_minute, parsed.rate.per_day) == (10, 500)
    again = parse_constraints(parsed.to_json())
    assert again == parsed
    assert parsed.to_json()["approval"] == "amount > 2000"


def test_an_unknown_key_is_named_with_the_closest_known_one() -> None:
    with pytest.raises(ConstraintsError, match=r"unknown constraint 'foldrs'; did you mean 'folders'\?"):
        parse_constraints({"foldrs": ["x"]})
    with pytest.raises(ConstraintsError, match=r"unknown constraint 'zzz'; known: folders"):
        parse_constraints({"zzz": 1})
    with pytest.raises(ConstraintsError, match=r"unknown key 'per_hour' in 'rate'"):
        parse_constraints({"rate": {"per_hour": 5}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_results": "50"}, "max_results: Input should be a valid integer"),
        ({"max_results": 0}, "max_results: Input should be greater than or equal to 1"),
        ({"max_results": True}, "max_results"),
        ({"max_amount": "5000"}, "max_amount"),
        ({"max_amount": -1}, "max_amount"),
        ({"currency": "dollars"}, "not a three-letter currency code"),
        ({"channels": "C1"}, "channels"),
        ({"channels": []}, "channels"),
        ({"recipients_domain": ["grace@example.com"]}, "is not a domain"),
        ({"redact": ["contacts[0].phone"]}, "neither a data label"),
        ({"approval": "amount >> 5"}, "approval: expected a number"),
        ({"approval": "__import__('os')"}, "approval"),
        ({"rate": {}}, "give per_minute, per_day or both"),
        ({"rate": {"per_minute": 1.5}}, "rate.per_minute"),
    ],
)
def test_wrong_values_are_refused_naming_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConstraintsError) as caught:
        parse_constraints(raw)
    assert message in str(caught.value)


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(ConstraintsError) as caught:
        parse_constraints({"foldrs": [], "max_results": "x"})
    assert len(caught.value.problems) == 2


def test_constraints_must_be_an_object() -> None:
    with pytest.raises(ConstraintsError, match="must be a JSON object"):
        parse_constraints(["channels"])  # type: ignore[arg-type]


def test_recipient_domains_match_exactly_or_by_wildcard_subdomain() -> None:
    allowed = frozenset({"example.com", "*.example.org"})
    assert allow_list_admits("recipients_domain", allowed, "Grace@EXAMPLE.com")
    assert not allow_list_admits("recipients_domain", allowed, "grace@mail.example.com")
    assert not allow_list_admits("recipients_domain", allowed, "grace@example.com.evil.io")
    assert allow_list_admits("recipients_domain", allowed, "grace@eu.example.org")
    assert not allow_list_admits("recipients_domain", allowed, "grace@example.org")
    assert not allow_list_admits("recipients_domain", allowed, "grace@notexample.org")


def test_ids_match_exactly_or_through_their_ancestors() -> None:
    allowed = frozenset({"F1"})
    assert allow_list_admits("folders", allowed, "F1")
    assert not allow_list_admits("folders", allowed, "f1")
    assert not allow_list_admits("folders", allowed, "file9")
    assert allow_list_admits("folders", allowed, "file9", {"file9": ["sub", "F1", "root"]})
    assert not allow_list_admits("folders", allowed, "file9", {"file9": ["sub", "root"]})
    assert not allow_list_admits("folders", allowed, None)
    assert not allow_list_admits("folders", allowed, True)


def test_a_mistyped_label_in_redact_is_refused_not_read_as_a_field() -> None:
    with pytest.raises(ConstraintsError, match=r"unknown data label 'pii\.emial'; did you mean 'pii\.email'\?"):
        parse_constraints({"redact": ["pii.emial"]})
    assert parse_constraints({"redact": ["financial", "owner.email"]}).redact == ("financial", "owner.email")
