"""The path syntax shared by tool metadata and constraints: parse strictly, read and filter without mutating."""

import pytest

from scopes.paths import PathError, filter_items, parse_path, values_at

DATA = {
    "to": ["a@x.io", "b@y.io"],
    "teams": [
        {"id": "t1", "members": [{"id": "u1"}, {"id": "u2"}]},
        {"id": "t2", "members": [{"id": "u3"}]},
    ],
    "owner": {"id": "u9"},
}


@pytest.mark.parametrize("text", ["", "a..b", "a[0]", "a[]b", "1a", "a.*", "a b", ".a", "a." + "b." * 12 + "c"])
def test_malformed_paths_are_refused(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


def test_paths_parse_into_segments() -> None:
    path = parse_path("teams[].members[].id")
    assert path.segments == (("teams", True), ("members", True), ("id", False))
    assert path.has_each and not path.bare and path.head == "teams"
    assert parse_path("phone").bare and not parse_path("phone[]").bare


def test_values_at_reads_through_lists_and_flattens_a_list_at_the_end() -> None:
    assert values_at(DATA, parse_path("to")) == ["a@x.io", "b@y.io"]
    assert values_at(DATA, parse_path("teams[].members[].id")) == ["u1", "u2", "u3"]
    assert values_at(DATA, parse_path("owner.id")) == ["u9"]
    assert values_at(DATA, parse_path("owner.missing")) == [None]
    assert values_at(DATA, parse_path("nothing[].id")) == []
    assert values_at("not a mapping", parse_path("a")) == []


def test_filter_items_filters_the_last_list_at_any_depth_and_copies() -> None:
    kept, removed = filter_items(DATA, parse_path("teams[].members[].id"), lambda ids: ids == ["u1"] or ids == ["u3"])
    assert removed == 1
    assert [[m["id"] for m in t["members"]] for t in kept["teams"]] == [["u1"], ["u3"]]
    assert [m["id"] for m in DATA["teams"][0]["members"]] == ["u1", "u2"], "the input is unchanged"
    same, none_removed = filter_items(DATA, parse_path("teams[].id"), lambda ids: True)
    assert same is DATA and none_removed == 0
    only, _ = filter_items(DATA, parse_path("to[]"), lambda values: values == ["b@y.io"])
    assert only["to"] == ["b@y.io"]
    with pytest.raises(PathError, match="names no list"):
        filter_items(DATA, parse_path("owner.id"), lambda ids: True)
