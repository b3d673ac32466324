"""Results are filtered to the allow-lists and masked at any depth, with stable masks that never leak."""

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scopes import ResultPolicy, filter_result, redact, shape_result, tool_policy
from scopes.redaction import mask_email, mask_phone, mask_text

KEY = b"redaction-key"

CHANNELS = tool_policy(scopes=["messaging.chat.read"], result_resources={"channels[].id": "channels"})
FILES = tool_policy(scopes=["storage.files.read"], result_resources={"files[].parents": "folders"})
DEALS = tool_policy(
    scopes=["crm.deals.read"],
    result_resources={"deals[].pipeline": "pipelines", "deals[].id": "object_ids"},
)


def test_lists_keep_only_what_lies_inside_the_allow_list() -> None:
    result = {"channels": [{"id": "C1", "name": "general"}, {"id": "C2", "name": "secret-merger"}], "next_cursor": "x"}
    filtered, rules = filter_result(result, CHANNELS, {"channels": frozenset({"C1"})})
    assert filtered == {"channels": [{"id": "C1", "name": "general"}], "next_cursor": "x"}
    assert "secret-merger" not in json.dumps(filtered)
    assert rules[0].effect == "filter" and "1 of" in rules[0].detail
    assert result["channels"][1]["id"] == "C2", "the input is never changed"


def test_items_are_kept_through_any_parent_or_its_ancestors() -> None:
    result = {"files": [{"id": "a", "parents": ["F1"]}, {"id": "b", "parents": ["sub"]}, {"id": "c", "parents": []}]}
    allow = {"folders": frozenset({"F1"})}
    direct, _ = filter_result(result, FILES, allow)
    assert [f["id"] for f in direct["files"]] == ["a"]
    nested, _ = filter_result(result, FILES, allow, ancestors={"sub": ["F1", "root"]})
    assert [f["id"] for f in nested["files"]] == ["a", "b"]


def test_every_allow_list_a_grant_sets_must_admit_an_item() -> None:
    result = {
        "deals": [
            {"id": "1", "pipeline": "default"},
            {"id": "2", "pipeline": "enterprise"},
            {"id": "3", "pipeline": None},
            {"id": "4", "pipeline": "default"},
        ]
    }
    only_pipeline, _ = filter_result(result, DEALS, {"pipelines": frozenset({"default"})})
    assert [d["id"] for d in only_pipeline["deals"]] == ["1", "4"]
    both, _ = filter_result(result, DEALS, {"pipelines": frozenset({"default"}), "object_ids": frozenset({"4"})})
    assert [d["id"] for d in both["deals"]] == ["4"]
    untouched, rules = filter_result(result, DEALS, {"channels": frozenset({"C1"})})
    assert untouched is result and rules == []


def test_masks_are_stable_and_keep_what_tells_records_apart() -> None:
    assert mask_email("Grace@Example.COM") == "G***@example.com"
    assert mask_phone("+1 (555) 123-4567") == "***67"
    assert mask_text(KEY, "Grace Hopper") == mask_text(KEY, "Grace Hopper")
    assert mask_text(KEY, "Grace Hopper") != mask_text(KEY, "Ada Lovelace")
    assert mask_text(KEY, "Grace Hopper") != mask_text(b"another key", "Grace Hopper")
    assert mask_text(KEY, "Grace Hopper").startswith("[redacted:")


def test_labels_mask_their_conventional_and_declared_fields_at_any_depth() -> None:
    result = {
        "contacts": [
            {
                "id": "51",
                "email": "grace@example.com",
                "phone": "+1 555 123 4567",
                "firstname": "Grace",
                "company": "Navy",
                "owner": {"owner_email": "boss@example.com", "aliases": ["g.h@example.com"]},
            }
        ],
        "notes": "Ping grace@example.com or call",
        "total": 1,
    }
    masked, rules = redact(
        result, ["pii.email", "pii.phone", "pii.name"], label_fields={"pii.name": ["contacts[].company"]}, key=KEY
    )
    contact = masked["contacts"][0]
    assert contact["email"] == "g***@example.com"
    assert contact["phone"] == "***67"
    assert contact["firstname"].startswith("[redacted:") and contact["company"].startswith("[redacted:")
    assert contact["owner"] == {"owner_email": "b***@example.com", "aliases": ["g***@example.com"]}
    assert masked["notes"] == "Ping g***@example.com or call"
    assert contact["id"] == "51" and masked["total"] == 1
    assert {r.constraint for r in rules} == {"pii.email", "pii.phone", "pii.name"}


def test_fields_and_paths_mask_exactly_what_they_name() -> None:
    result = {"users": [{"id": "U1", "title": "CFO", "tz": "Europe/London"}], "title": "top"}
    bare, _ = redact(result, ["title"], label_fields={}, key=KEY)
    assert bare["users"][0]["title"].startswith("[redacted:") and bare["title"].startswith("[redacted:")
    rooted, _ = redact(result, ["users[].title"], label_fields={}, key=KEY)
    assert rooted["users"][0]["title"].startswith("[redacted:") and rooted["title"] == "top"
    assert rooted["users"][0]["tz"] == "Europe/London"


def test_a_parent_label_covers_its_children_and_numbers_are_masked_too() -> None:
    result = {
        "charges": [{"id": "ch_1", "amount": 2500, "card": {"brand": "visa", "last4": "4242"}, "refunded": False}]
    }
    masked, _ = redact(result, ["financial"], label_fields={}, key=KEY)
    charge = masked["charges"][0]
    assert charge["id"] == "ch_1" and charge["refunded"] is False
    assert str(charge["amount"]).startswith("[redacted:")
    assert charge["card"]["brand"].startswith("[redacted:") and "4242" not in json.dumps(masked)


def test_shape_result_filters_then_masks_and_says_so() -> None:
    result = {"channels": [{"id": "C1", "purpose": "mail ops@example.com"}, {"id": "C2", "purpose": "x"}]}
    policy = ResultPolicy({"channels": frozenset({"C1"})}, ("pii.email",))
    shaped = shape_result(result, policy=CHANNELS, results=policy, key=KEY)
    assert shaped.result == {"channels": [{"id": "C1", "purpose": "mail o***@example.com"}]}
    assert [r.rule for r in shaped.rules] == ["filter", "redact"]
    assert shaped.notes == ("results are limited to the allowed channels", "masked by policy: pii.email")
    assert shape_result(result, policy=CHANNELS, results=ResultPolicy(), key=KEY).result is result


# Property: whatever the nesting, no labelled value survives redaction.

_local = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=10)
_domain = st.sampled_from(["example.com", "mail.example.org", "corp.io"])
_emails = st.builds(lambda local, dom: f"{local}@{dom}", _local, _domain)
_phones = st.builds(
    lambda cc, a, b, c, sep: f"+{cc}{sep}{a}{sep}{b}{sep}{c}",
    st.integers(1, 99),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(1000, 9999),
    st.sampled_from([" ", "-", ".", ""]),
)
_filler = st.text("xyz QRS", max_size=6)
_keys = st.sampled_from(["id", "name", "items", "data", "owner", "meta"])


def _tree() -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        _filler,
        st.integers(),
        st.none(),
        st.builds(lambda e: {"email": e}, _emails),
        st.builds(lambda p: {"phone": p}, _phones),
        st.builds(lambda e, f: f"{f} {e}, {f}", _emails, _filler),
        st.builds(lambda e: {"emails": [e, e.upper()]}, _emails),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
        max_leaves=12,
    )


def _labelled(node: Any, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("email", "emails", "phone"):
                found.extend(value if isinstance(value, list) else [value])
            else:
                _labelled(value, found)
    elif isinstance(node, list):
        for item in node:
            _labelled(item, found)
    elif isinstance(node, str) and "@" in node:
        found.extend(word.strip(",") for word in node.split() if "@" in word)
    return found


def _leaves(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for item in node for leaf in _leaves(item)]
    return [] if node is None else [str(node)]


@given(_tree())
def test_redaction_never_leaks_a_labelled_value_at_any_depth(tree: Any) -> None:
    masked, _ = redact(tree, ["pii.email", "pii.phone"], label_fields={}, key=KEY)
    leaves = _leaves(masked)
    for value in _labelled(tree, []):
        if "@" in value:
            assert not any(value.lower() in leaf.lower() for leaf in leaves), value
        else:
            digits = "".join(c for c in value if c.isdigit())
            assert not any(digits in "".join(c for c in leaf if c.isdigit()) for leaf in leaves), value


@given(_tree())
def test_redaction_is_idempotent_and_keeps_the_shape(tree: Any) -> None:
    once, _ = redact(tree, ["pii.email", "pii.phone"], label_fields={}, key=KEY)
    twice, _ = redact(once, ["pii.email", "pii.phone"], label_fields={}, key=KEY)
    assert once == twice

    def shape(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: shape(v) for k, v in node.items()}
        if isinstance(node, list):
            return [shape(v) for v in node]
        return None

    assert shape(once) == shape(tree)
