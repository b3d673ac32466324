"""Data flow: values returned under sensitive labels are fingerprinted and found again in a sink's arguments."""

from hypothesis import given
from hypothesis import strategies as st

from scopes import (
    FlowContext,
    FlowOrigin,
    GrantView,
    candidates,
    decide,
    extract_sensitive,
    find_flows,
    fingerprint,
    fingerprint_result,
    flow_decision,
    normalise,
    session_decision,
    tool_policy,
)
from scopes.flow import Flow

KEY = b"flow-key-0123456789"
CONTACT = {
    "id": "51",
    "email": "Grace.Hopper@Example.com",
    "phone": "+1 (555) 123-4567",
    "firstname": "Grace",
    "lastname": "Hopper",
    "real_name": "Grace Brewster Hopper",
    "company": "Navy",
}
CONTACT_GET = tool_policy(scopes=["crm.contacts.read"], labels=["pii.email", "pii.phone", "pii.name"])


def _store(result: object, tool: str = "hubspot_contacts_get") -> dict[str, FlowOrigin]:
    return {fp: FlowOrigin(label, tool) for fp, label in fingerprint_result(result, CONTACT_GET, KEY).items()}


def test_normalise_per_kind() -> None:
    assert normalise("  Grace@Example.COM ", "pii.email") == "grace@example.com"
    assert normalise("+1 (555) 123-4567", "pii.phone") == "5551234567"
    assert normalise("555.123.4567", "pii.phone") == "5551234567"
    assert normalise("  O'Brien,   Grace ", "pii.name") == "o brien grace"


def test_fingerprints_are_keyed_and_normalised() -> None:
    assert fingerprint(KEY, "grace@example.com", "pii.email") == fingerprint(KEY, " GRACE@example.com", "pii.email")
    assert fingerprint(KEY, "grace@example.com", "pii.email") != fingerprint(b"other", "grace@example.com", "pii.email")
    assert fingerprint(KEY, "+15551234567", "pii.phone") == fingerprint(KEY, "(555) 123 4567", "pii.phone")
    assert len(fingerprint(KEY, "x", "pii.name")) == 64


def test_extract_sensitive_finds_labelled_fields_and_emails_in_text() -> None:
    result = {"contacts": [CONTACT], "note": "cc ops@example.org please", "count": 1}
    found = set(extract_sensitive(result, {}, ["pii.email", "pii.phone", "pii.name", "untrusted.content"]))
    assert ("pii.email", "Grace.Hopper@Example.com") in found
    assert ("pii.email", "ops@example.org") in found
    assert ("pii.phone", "+1 (555) 123-4567") in found
    assert {("pii.name", "Grace"), ("pii.name", "Hopper"), ("pii.name", "Grace Brewster Hopper")} <= found
    assert not any(value in ("51", "Navy") for _, value in found), "ids and companies are not personal data"


def test_extract_sensitive_uses_declared_paths_and_only_declared_labels() -> None:
    result = {"people": [{"who": "Ada Lovelace", "reach": "ada@example.com"}]}
    assert extract_sensitive(result, {"pii.name": ["people[].who"]}) == [("pii.name", "Ada Lovelace")]
    assert extract_sensitive(result, {}, ["pii.phone"]) == []
    assert extract_sensitive({"phone": "12"}, {}, ["pii.phone"]) == [], "too short to be a phone"


def test_a_value_is_found_exactly_in_another_case_and_inside_text() -> None:
    store = _store(CONTACT)
    exact = find_flows({"to": ["grace.hopper@example.com"]}, store, KEY)
    assert [(f.label, f.argument, f.whole) for f in exact] == [("pii.email", "to[0]", True)]
    upper = find_flows({"to": ["GRACE.HOPPER@EXAMPLE.COM"]}, store, KEY)
    assert [f.label for f in upper] == ["pii.email"]
    text = "Hi team, reach Grace Brewster Hopper at <Grace.Hopper@example.com> or 555-123-4567."
    found = {(f.label, f.argument, f.whole) for f in find_flows({"text": text}, store, KEY)}
    assert found == {("pii.email", "text", False), ("pii.phone", "text", False), ("pii.name", "text", False)}
    assert all(f.source_tool == "hubspot_contacts_get" for f in find_flows({"text": text}, store, KEY))


def test_single_words_are_found_only_as_a_whole_argument() -> None:
    store = _store(CONTACT)
    assert find_flows({"text": "Amazing grace, how sweet"}, store, KEY) == []
    assert [f.label for f in find_flows({"name": "grace"}, store, KEY)] == ["pii.name"]


def test_phones_are_found_in_any_format_and_among_other_numbers() -> None:
    store = _store({"phone": "+44 20 7946 0958"})
    for text in ("call 020 7946 0958", "(20) 7946-0958", "+442079460958", "numbers: 555 987 6543 20 7946 0958"):
        assert [f.label for f in find_flows({"t": text}, store, KEY)] == ["pii.phone"], text
    assert find_flows({"t": "ts 1712345678.123456 and 2024-01-15"}, store, KEY) == []


def test_emails_are_found_with_prefixes_and_subdomains_around_them() -> None:
    store = _store({"email": "grace@example.com"})
    for text in ("mailto:grace@example.com", "x.grace@example.com", "grace@example.com.au", "(grace@example.com)."):
        assert [f.label for f in find_flows({"t": text}, store, KEY)] == ["pii.email"], text
    assert find_flows({"t": "grace@example.org"}, store, KEY) == []


def test_nothing_to_find_without_fingerprints() -> None:
    assert find_flows({"text": "grace@example.com"}, {}, KEY) == []
    assert candidates({"n": 5, "flag": True}, KEY) == {}


@given(
    prefix=st.text(max_size=40),
    suffix=st.text(max_size=40),
    left=st.sampled_from([" ", "\n", "<", "(", ",", ":", '"', "'", "\t", "[", ";"]),
    right=st.sampled_from([" ", "\n", ">", ")", ",", ";", '"', "'", ". ", "!", "]"]),
    local=st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20).filter(
        lambda s: s[0].isalnum() and s[-1].isalnum()
    ),
    domain=st.sampled_from(["example.com", "mail.example.org", "x.io"]),
    case=st.sampled_from([str.lower, str.upper, str.title, str.swapcase]),
)
def test_an_email_is_found_inside_any_surrounding_text_in_any_case(
    prefix: str, suffix: str, left: str, right: str, local: str, domain: str, case: object
) -> None:
    email = f"{local}@{domain}"
    store = {fingerprint(KEY, email, "pii.email"): FlowOrigin("pii.email", "gmail_messages_get")}
    text = f"{prefix}{left}{case(email)}{right}{suffix}"  # type: ignore[operator]
    flows = find_flows({"body": text}, store, KEY)
    assert [(f.label, f.source_tool, f.argument) for f in flows] == [("pii.email", "gmail_messages_get", "body")]


def test_flow_decision_blocks_naming_label_and_source_unless_a_rule_allows() -> None:
    flows = [
        Flow("pii.email", "hubspot_contacts_get", "text", False),
        Flow("pii.phone", "hubspot_contacts_get", "text", False),
    ]
    blocked = flow_decision(flows, [], tool="slack_messages_post", scopes=["messaging.chat.send"])
    assert blocked.reason == "flow_blocked"
    assert "pii.email" in blocked.detail and "hubspot_contacts_get" in blocked.detail
    half = flow_decision(
        flows, [("pii.email", "messaging.chat.send")], tool="slack_messages_post", scopes=["messaging.chat.send"]
    )
    assert half.reason == "flow_blocked" and "pii.phone" in half.detail
    by_tool = flow_decision(
        flows, [("pii", "slack_messages_post")], tool="slack_messages_post", scopes=["messaging.chat.send"]
    )
    assert by_tool.allowed
    elsewhere = flow_decision(
        flows, [("pii", "messaging.email.send")], tool="slack_messages_post", scopes=["messaging.chat.send"]
    )
    assert not elsewhere.allowed
    assert flow_decision([], [], tool="t").allowed


def test_session_decision() -> None:
    sink = tool_policy(scopes=["messaging.chat.send"])
    refund = tool_policy(scopes=["payments.refunds.write"], sink=False)
    read = tool_policy(scopes=["crm.contacts.read"])
    assert session_decision(False, sink, "refuse").allowed
    assert session_decision(True, read, "refuse").allowed
    assert session_decision(True, sink, "approve").pending
    assert session_decision(True, refund, "approve").pending, "payment tools are high risk by default"
    refused = session_decision(True, sink, "refuse", tool_name="slack_messages_post", source="gmail_messages_get")
    assert refused.reason == "flow_blocked" and "gmail_messages_get" in refused.detail
    assert tool_policy(scopes=["messaging.email.read"], labels=["untrusted.content"]).untrusted


def test_masked_values_are_not_fingerprinted() -> None:
    masked = {"email": "g***@example.com", "phone": "***67", "firstname": "[redacted:0123abcd]"}
    assert extract_sensitive(masked, {}, ["pii.email", "pii.phone", "pii.name"]) == []


def test_a_contact_read_then_posted_to_chat_is_blocked_until_flow_rules_allow_it() -> None:
    store = _store({"contacts": [CONTACT]})
    post = tool_policy(scopes=["messaging.chat.send"], resources={"channel": "channels"})
    grants = [GrantView("chat", "slack", "messaging.chat.send", {"channels": ["C1"]})]
    args = {"channel": "C1", "text": "New lead: grace.hopper@example.com, +1 555 123 4567"}

    def post_with(rules: list[tuple[str, str]]) -> str:
        decision = decide(
            tool="slack_messages_post",
            provider="slack",
            needed=["messaging.chat.send"],
            grants=grants,
            connection=None,
            policy=post,
            arguments=args,
            flow=FlowContext(store, KEY, rules),
        )
        return decision.reason or decision.outcome

    assert post_with([]) == "flow_blocked"
    assert post_with([("pii.email", "messaging.chat.send")]) == "flow_blocked", "the phone still flows"
    assert post_with([("pii.email", "messaging.chat.send"), ("pii.phone", "messaging.chat.send")]) == "allow"
