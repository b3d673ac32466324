"""decide() with arguments: each constraint both allows and refuses, and every rule shows in `rules`."""

import json
from typing import Any

import pytest

from scopes import (
    CallFacts,
    FlowContext,
    FlowOrigin,
    GrantView,
    RateUsage,
    SessionState,
    arguments_digest,
    check_rates,
    decide,
    facts_needed,
    fingerprint,
    rate_limits_for,
    tool_policy,
    unlisted_resources,
)
from scopes.decision import Decision

KEY = b"k" * 32

SLACK_POST = tool_policy(scopes=["messaging.chat.send"], resources={"channel": "channels"})
SLACK_LIST = tool_policy(
    scopes=["messaging.chat.read"],
    labels=["untrusted.content"],
    parameters=["limit", "cursor"],
    resources={},
    result_resources={"channels[].id": "channels"},
)
SLACK_USERS = tool_policy(scopes=["messaging.chat.read"], labels=["pii.email"], resources={})
GMAIL_SEND = tool_policy(
    scopes=["messaging.email.send"], resources={"to": "recipients_domain", "cc": "recipients_domain"}
)
GMAIL_REPLY = tool_policy(
    scopes=["messaging.email.read", "messaging.email.send"], resources={}, resolved_resources=["recipients_domain"]
)
DRIVE_GET = tool_policy(scopes=["storage.files.read"], resources={"file_id": "folders"})
DRIVE_SEARCH = tool_policy(
    scopes=["storage.files.read"], parameters=["query", "page_size"], result_resources={"files[].parents": "folders"}
)
REFUND = tool_policy(scopes=["payments.refunds.write"], resources={}, amount="amount", sink=False)
INVOICE = tool_policy(
    scopes=["payments.invoices.write"],
    resources={"customer": "customers"},
    amount="items[].unit_amount*quantity",
    currency="currency",
)
CONTACT_UPDATE = tool_policy(
    scopes=["crm.contacts.write"],
    resources={"contact_id": "object_ids"},
    properties=["email", "firstname", "lastname", "phone"],
    sink=False,
)
CONTACT_SEARCH = tool_policy(scopes=["crm.contacts.read"], parameters=["query", "limit"], resources={})


def _decide(
    policy: Any,
    scope: str | list[str],
    constraints: dict[str, Any] | list[dict[str, Any]],
    arguments: dict[str, Any],
    *,
    provider: str = "p",
    **extra: Any,
) -> Decision:
    scopes = [scope] if isinstance(scope, str) else scope
    per_scope = constraints if isinstance(constraints, list) else [constraints] * len(scopes)
    grants = [GrantView("conn", provider, s, c) for s, c in zip(scopes, per_scope, strict=True)]
    return decide(
        tool="the_tool",
        provider=provider,
        needed=scopes,
        grants=grants,
        connection=None,
        policy=policy,
        arguments=arguments,
        **extra,
    )


def _effects(decision: Decision, rule: str) -> list[str]:
    return [r.effect for r in decision.rules if r.rule == rule]


# Compatibility: without arguments, decide is the scope check it always was.


def test_without_arguments_only_the_scope_is_checked() -> None:
    grants = [GrantView("conn", "p", "messaging.chat.send", {"channels": ["C1"], "approval": "always"})]
    decision = decide(tool="t", provider="p", needed=["messaging.chat.send"], grants=grants, connection=None)
    assert decision.allowed and decision.connection == "conn"
    assert [r.rule for r in decision.rules] == ["scope"]


def test_a_scope_denial_stops_before_any_constraint() -> None:
    decision = decide(
        tool="t",
        provider="p",
        needed=["messaging.chat.send"],
        grants=[],
        connection=None,
        policy=SLACK_POST,
        arguments={"channel": "C9"},
    )
    assert decision.reason == "scope_denied" and [r.rule for r in decision.rules] == ["scope"]


def test_no_constraints_allow_everything_the_scope_allows() -> None:
    decision = _decide(SLACK_POST, "messaging.chat.send", {}, {"channel": "C9", "text": "hi"})
    assert decision.allowed and decision.results.empty and not decision.changes


def test_invalid_stored_constraints_refuse_instead_of_being_ignored() -> None:
    decision = _decide(SLACK_POST, "messaging.chat.send", {"chanels": ["C1"]}, {"channel": "C1"})
    assert decision.reason == "constraint_violated"
    assert "unknown constraint 'chanels'" in decision.detail


# Allow-lists.


def test_channel_allow_list_allows_a_listed_channel_and_refuses_another() -> None:
    allowed = _decide(SLACK_POST, "messaging.chat.send", {"channels": ["C1"]}, {"channel": "C1", "text": "x"})
    assert allowed.allowed and _effects(allowed, "allow_list") == ["pass"]
    refused = _decide(SLACK_POST, "messaging.chat.send", {"channels": ["C1"]}, {"channel": "C2", "text": "x"})
    assert refused.outcome == "deny" and refused.reason == "constraint_violated"
    assert "'channels'" in refused.detail and "'C2'" in refused.detail and "C1" not in refused.detail


def test_recipient_domains_check_every_recipient() -> None:
    constraints = {"recipients_domain": ["example.com"]}
    ok = _decide(GMAIL_SEND, "messaging.email.send", constraints, {"to": ["a@example.com"], "cc": []})
    assert ok.allowed
    bad = _decide(GMAIL_SEND, "messaging.email.send", constraints, {"to": ["a@example.com"], "cc": ["b@evil.io"]})
    assert bad.reason == "constraint_violated" and "'cc'" in bad.detail and "recipients_domain" in bad.detail


def test_a_file_is_allowed_through_its_folders_not_its_id() -> None:
    constraints = {"folders": ["F1"]}
    unknown = _decide(DRIVE_GET, "storage.files.read", constraints, {"file_id": "doc9"})
    assert unknown.reason == "constraint_violated"
    inside = CallFacts(ancestors={"doc9": ["sub", "F1", "root"]})
    assert _decide(DRIVE_GET, "storage.files.read", constraints, {"file_id": "doc9"}, facts=inside).allowed
    outside = CallFacts(ancestors={"doc9": ["other", "root"]})
    assert not _decide(DRIVE_GET, "storage.files.read", constraints, {"file_id": "doc9"}, facts=outside).allowed
    grants = [GrantView("conn", "p", "storage.files.read", constraints)]
    assert unlisted_resources(DRIVE_GET, grants, {"file_id": "doc9"}) == {"folders": ["doc9"]}
    assert unlisted_resources(DRIVE_GET, grants, {"file_id": "F1"}) == {}


def test_lists_are_filtered_not_refused() -> None:
    decision = _decide(DRIVE_SEARCH, "storage.files.read", {"folders": ["F1"]}, {"query": "x", "page_size": 10})
    assert decision.allowed and _effects(decision, "allow_list") == ["filter"]
    assert decision.results.allow_lists == {"folders": frozenset({"F1"})}


def test_an_allow_list_a_tool_does_not_touch_does_not_apply() -> None:
    decision = _decide(SLACK_USERS, "messaging.chat.read", {"channels": ["C1"]}, {"user_id": "U1"})
    assert decision.allowed and "does not apply" in decision.rules[1].detail


def test_an_unannotated_tool_is_refused_under_an_allow_list() -> None:
    unannotated = tool_policy(scopes=["messaging.chat.read"])
    decision = _decide(unannotated, "messaging.chat.read", {"channels": ["C1"]}, {"channel": "C1"})
    assert decision.reason == "constraint_violated" and "does not declare the resources" in decision.detail
    assert _decide(None, "messaging.chat.read", {"channels": ["C1"]}, {}).reason == "constraint_violated"


def test_resources_only_the_provider_knows_must_be_resolved_by_the_hub() -> None:
    constraints = {"recipients_domain": ["example.com"]}
    args = {"message_id": "m1", "body": "thanks"}
    scopes = ["messaging.email.read", "messaging.email.send"]
    unresolved = _decide(GMAIL_REPLY, scopes, constraints, args)
    assert unresolved.reason == "constraint_violated" and "could not be determined" in unresolved.detail
    inside = CallFacts(resources={"recipients_domain": ["Grace <grace@example.com>"]})
    assert _decide(GMAIL_REPLY, scopes, constraints, args, facts=inside).allowed
    outside = CallFacts(resources={"recipients_domain": ["mallory@evil.io"]})
    assert _decide(GMAIL_REPLY, scopes, constraints, args, facts=outside).reason == "constraint_violated"


def test_two_grants_must_both_allow_and_their_lists_intersect() -> None:
    scopes = ["messaging.chat.read", "messaging.chat.send"]
    constraints = [{"channels": ["C1", "C2"]}, {"channels": ["C2", "C3"]}]
    both = tool_policy(
        scopes=scopes, resources={"channel": "channels"}, result_resources={"messages[].channel": "channels"}
    )
    assert _decide(both, scopes, constraints, {"channel": "C2"}).allowed
    refused = _decide(both, scopes, constraints, {"channel": "C1"})
    assert refused.reason == "constraint_violated" and "messaging.chat.send" in refused.detail
    assert _decide(both, scopes, constraints, {"channel": "C2"}).results.allow_lists == {"channels": frozenset({"C2"})}


# max_results.


@pytest.mark.parametrize(("given", "expected"), [(100, 50), (None, 50), (10, None)])
def test_max_results_clamps_the_page_size(given: int | None, expected: int | None) -> None:
    decision = _decide(CONTACT_SEARCH, "crm.contacts.read", {"max_results": 50}, {"query": "", "limit": given})
    assert decision.allowed
    if expected is None:
        assert decision.changes == {} and _effects(decision, "max_results") == ["pass"]
    else:
        assert decision.changes == {"limit": expected} and _effects(decision, "max_results") == ["clamp"]
        assert decision.results.max_results == expected
        assert decision.notes and "lowered to 50" in decision.notes[0]


def test_max_results_does_not_apply_without_a_page_size_argument() -> None:
    decision = _decide(SLACK_USERS, "messaging.chat.read", {"max_results": 5}, {"user_id": "U1"})
    assert decision.allowed and decision.changes == {} and "does not apply" in decision.rules[1].detail


def test_the_lowest_max_results_of_two_grants_wins() -> None:
    scopes = ["crm.contacts.read", "crm.companies.read"]
    policy = tool_policy(scopes=scopes, parameters=["limit"], resources={})
    decision = _decide(policy, scopes, [{"max_results": 50}, {"max_results": 20}], {"limit": 100})
    assert decision.changes == {"limit": 20}


# max_amount and currency.


def test_max_amount_allows_up_to_the_limit_and_refuses_above() -> None:
    constraints = {"max_amount": 5000}
    assert _decide(REFUND, "payments.refunds.write", constraints, {"charge": "ch_1", "amount": 5000}).allowed
    refused = _decide(REFUND, "payments.refunds.write", constraints, {"charge": "ch_1", "amount": 5001})
    assert refused.reason == "constraint_violated" and "max_amount" in refused.detail and "5001" in refused.detail


def test_an_amount_nobody_can_tell_is_refused_unless_the_hub_resolves_it() -> None:
    constraints = {"max_amount": 5000}
    full_refund = {"charge": "ch_1", "amount": None}
    refused = _decide(REFUND, "payments.refunds.write", constraints, full_refund)
    assert refused.reason == "constraint_violated" and "could not be determined" in refused.detail
    small = _decide(REFUND, "payments.refunds.write", constraints, full_refund, facts=CallFacts(amount=1200))
    assert small.allowed
    large = _decide(REFUND, "payments.refunds.write", constraints, full_refund, facts=CallFacts(amount=9000))
    assert large.reason == "constraint_violated"


def test_an_invoice_amount_is_the_sum_of_its_lines_times_quantities() -> None:
    constraints = {"max_amount": 10_000, "currency": ["usd", "eur"]}
    lines = [
        {"description": "a", "unit_amount": 1000, "quantity": 3},
        {"description": "b", "unit_amount": 500, "quantity": 1},
    ]
    args = {"customer": "cus_1", "items": lines, "currency": "USD"}
    assert _decide(INVOICE, "payments.invoices.write", constraints, args).allowed
    many = {**args, "items": [{"description": "a", "unit_amount": 1000, "quantity": 11}]}
    refused = _decide(INVOICE, "payments.invoices.write", constraints, many)
    assert refused.reason == "constraint_violated" and "11000" in refused.detail


def test_currency_allows_listed_codes_and_refuses_others_or_unknown() -> None:
    constraints = {"currency": "usd"}
    args = {"customer": "cus_1", "items": [{"unit_amount": 1, "quantity": 1}]}
    assert _decide(INVOICE, "payments.invoices.write", constraints, {**args, "currency": "usd"}).allowed
    eur = _decide(INVOICE, "payments.invoices.write", constraints, {**args, "currency": "eur"})
    assert eur.reason == "constraint_violated" and "'eur'" in eur.detail
    unknown = _decide(INVOICE, "payments.invoices.write", constraints, {**args, "currency": None})
    assert unknown.reason == "constraint_violated"
    resolved = CallFacts(currency="USD")
    assert _decide(INVOICE, "payments.invoices.write", constraints, {**args, "currency": None}, facts=resolved).allowed


def test_amount_limits_do_not_apply_to_reads() -> None:
    read = tool_policy(scopes=["payments.charges.read"], resources={})
    decision = _decide(read, "payments.charges.read", {"max_amount": 1, "currency": "usd"}, {"limit": 10})
    assert decision.allowed and _effects(decision, "max_amount") == _effects(decision, "currency") == ["pass"]


# allowed_properties.


def test_allowed_properties_allow_listed_properties_and_name_the_others() -> None:
    constraints = {"allowed_properties": ["firstname", "lastname"], "object_ids": ["51"]}
    ok = _decide(
        CONTACT_UPDATE, "crm.contacts.write", constraints, {"contact_id": "51", "firstname": "G", "email": None}
    )
    assert ok.allowed
    refused = _decide(
        CONTACT_UPDATE, "crm.contacts.write", constraints, {"contact_id": "51", "email": "x@y.z", "phone": "1"}
    )
    assert refused.reason == "constraint_violated" and "'email', 'phone'" in refused.detail
    elsewhere = _decide(CONTACT_UPDATE, "crm.contacts.write", constraints, {"contact_id": "52", "firstname": "G"})
    assert elsewhere.reason == "constraint_violated" and "object_ids" in elsewhere.detail


def test_allowed_properties_refuse_a_write_that_declares_no_properties() -> None:
    undeclared = tool_policy(scopes=["crm.contacts.write"], resources={})
    decision = _decide(undeclared, "crm.contacts.write", {"allowed_properties": ["firstname"]}, {"email": "x"})
    assert decision.reason == "constraint_violated" and "does not declare which arguments" in decision.detail


# Approval.


def test_approval_always_makes_every_call_wait() -> None:
    decision = _decide(SLACK_POST, "messaging.chat.send", {"approval": "always"}, {"channel": "C1"})
    assert decision.pending and decision.reason == "approval_required"
    assert _decide(SLACK_POST, "messaging.chat.send", {"approval": "always"}, {"channel": "C1"}, approved=True).allowed


def test_an_approval_condition_waits_only_when_it_holds_or_cannot_be_decided() -> None:
    constraints = {"approval": "amount > 2000"}
    assert _decide(REFUND, "payments.refunds.write", constraints, {"amount": 2000}).allowed
    assert _decide(REFUND, "payments.refunds.write", constraints, {"amount": 2500}).pending
    full = _decide(REFUND, "payments.refunds.write", constraints, {"amount": None})
    assert full.pending and "amount unknown" in full.detail
    assert _decide(REFUND, "payments.refunds.write", constraints, {"amount": None}, facts=CallFacts(amount=10)).allowed


def test_an_approval_condition_sees_a_declared_amount_even_without_an_amount_argument() -> None:
    args = {"customer": "cus_1", "items": [{"unit_amount": 1500, "quantity": 2}], "currency": "usd"}
    assert _decide(INVOICE, "payments.invoices.write", {"approval": "amount > 2000"}, args).pending


def test_a_denial_wins_over_a_pending_approval() -> None:
    decision = _decide(SLACK_POST, "messaging.chat.send", {"approval": "always", "channels": ["C1"]}, {"channel": "C2"})
    assert decision.outcome == "deny" and _effects(decision, "approval") == ["approve"]


# Rate.


def test_rate_limits_allow_within_and_refuse_beyond_with_retry_after() -> None:
    constraints = {"rate": {"per_minute": 2, "per_day": 10}}
    key = ("conn", "messaging.chat.send")
    within = _decide(SLACK_POST, "messaging.chat.send", constraints, {"channel": "C1"}, usage={key: RateUsage(2, 2)})
    assert within.allowed and within.rate_limits[0].per_minute == 2
    minute = _decide(
        SLACK_POST, "messaging.chat.send", constraints, {"channel": "C1"}, usage={key: RateUsage(3, 3, 12.2)}
    )
    assert minute.reason == "rate_limited" and minute.retry_after == 13
    day = _decide(
        SLACK_POST,
        "messaging.chat.send",
        constraints,
        {"channel": "C1"},
        usage={key: RateUsage(1, 11, 30, 3600)},
    )
    assert day.reason == "rate_limited" and day.retry_after == 3600


def test_rates_can_be_counted_after_deciding() -> None:
    grants = [GrantView("conn", "p", "messaging.chat.send", {"rate": {"per_minute": 1}})]
    decision = decide(
        tool="t",
        provider="p",
        needed=["messaging.chat.send"],
        grants=grants,
        connection=None,
        policy=SLACK_POST,
        arguments={"channel": "C1"},
    )
    assert decision.allowed and decision.rate_limits == tuple(
        rate_limits_for("p", ["messaging.chat.send"], grants, "conn")
    )
    over = check_rates(decision.rate_limits, {("conn", "messaging.chat.send"): RateUsage(2, 2)})
    assert [r.effect for r in over] == ["deny"]
    assert [r.effect for r in check_rates(decision.rate_limits, {})] == ["pass"]


# Data flow and untrusted sessions inside decide.


def test_a_sink_carrying_a_fingerprinted_value_is_blocked_unless_a_rule_allows_it() -> None:
    store = {fingerprint(KEY, "grace@example.com", "pii.email"): FlowOrigin("pii.email", "hubspot_contacts_get")}
    args = {"channel": "C1", "text": "Reach Grace at GRACE@example.com today"}
    blocked = _decide(SLACK_POST, "messaging.chat.send", {}, args, flow=FlowContext(store, KEY))
    assert blocked.reason == "flow_blocked"
    assert "pii.email" in blocked.detail and "hubspot_contacts_get" in blocked.detail
    rule = FlowContext(store, KEY, [("pii.email", "messaging.chat.send")])
    assert _decide(SLACK_POST, "messaging.chat.send", {}, args, flow=rule).allowed
    not_a_sink = _decide(
        CONTACT_SEARCH, "crm.contacts.read", {}, {"query": "grace@example.com"}, flow=FlowContext(store, KEY)
    )
    assert not_a_sink.allowed and not _effects(not_a_sink, "flow")


def test_an_untrusted_session_makes_sinks_wait_or_refuses_them() -> None:
    untrusted = SessionState(untrusted=True, policy="approve", source="gmail_messages_get")
    waiting = _decide(SLACK_POST, "messaging.chat.send", {}, {"channel": "C1"}, session=untrusted)
    assert waiting.pending and "gmail_messages_get" in waiting.detail
    refusing = SessionState(untrusted=True, policy="refuse")
    assert _decide(SLACK_POST, "messaging.chat.send", {}, {"channel": "C1"}, session=refusing).reason == "flow_blocked"
    assert _decide(CONTACT_SEARCH, "crm.contacts.read", {}, {}, session=refusing).allowed
    assert _decide(SLACK_POST, "messaging.chat.send", {}, {"channel": "C1"}, session=SessionState()).allowed


# What the hub keeps.


def test_redactions_of_all_grants_used_are_collected_for_the_result() -> None:
    scopes = ["crm.contacts.read", "crm.companies.read"]
    policy = tool_policy(scopes=scopes, resources={})
    decision = _decide(policy, scopes, [{"redact": ["pii.email"]}, {"redact": ["phone", "pii.email"]}], {})
    assert decision.results.redact == ("pii.email", "phone")


def test_the_decision_is_json_for_explain() -> None:
    decision = _decide(
        CONTACT_SEARCH,
        "crm.contacts.read",
        {"max_results": 5, "redact": ["pii.phone"], "rate": {"per_day": 9}, "approval": "always"},
        {"query": "", "limit": 20},
    )
    as_json = json.loads(json.dumps(decision.to_dict()))
    assert as_json["outcome"] == "pending_approval"
    assert [r["rule"] for r in as_json["rules"]] == ["scope", "max_results", "approval"]
    assert as_json["changes"] == {"limit": 5} and as_json["rate_limits"][0]["per_day"] == 9


def test_an_arguments_digest_binds_tool_connection_and_exact_arguments() -> None:
    digest = arguments_digest("t", "conn", {"b": 1, "a": [1, 2]})
    assert digest == arguments_digest("t", "conn", {"a": [1, 2], "b": 1})
    assert digest != arguments_digest("t", "conn", {"a": [2, 1], "b": 1})
    assert digest != arguments_digest("t", "other", {"a": [1, 2], "b": 1})
    assert digest != arguments_digest("u", "conn", {"a": [1, 2], "b": 1})


REFUND_POLICY = tool_policy(
    scopes=["payments.refunds.write"], resources={}, resolved_resources=["customers"], amount="amount"
)


def _refund_grant(constraints: dict[str, Any]) -> list[GrantView]:
    return [GrantView("pay", "stripe", "payments.refunds.write", constraints)]


@pytest.mark.parametrize(
    ("constraints", "arguments", "amount", "resources"),
    [
        ({}, {"charge": "ch_1"}, False, ()),
        ({"max_amount": 1000}, {"charge": "ch_1", "amount": 700}, False, ()),  # the argument says it
        ({"max_amount": 1000}, {"charge": "ch_1"}, True, ()),  # a full refund: only Stripe knows how much
        ({"currency": "usd"}, {"charge": "ch_1", "amount": 700}, True, ()),  # refunds carry no currency
        ({"approval": "amount > 500"}, {"charge": "ch_1"}, True, ()),
        ({"approval": "always"}, {"charge": "ch_1"}, False, ()),
        ({"customers": ["cus_1"]}, {"charge": "ch_1", "amount": 5}, False, ("customers",)),
    ],
)
def test_facts_needed_asks_the_provider_only_what_a_constraint_needs(
    constraints: dict[str, Any], arguments: dict[str, Any], amount: bool, resources: tuple[str, ...]
) -> None:
    needed = facts_needed(REFUND_POLICY, _refund_grant(constraints), "pay", arguments, ["payments.refunds.write"])
    assert (needed.amount, needed.resources, dict(needed.ancestors)) == (amount, resources, {})
    assert bool(needed) == (amount or bool(resources))
    # Another connection's grants never make this call look anything up.
    assert not facts_needed(REFUND_POLICY, _refund_grant(constraints), "other", arguments, ["payments.refunds.write"])


def test_facts_needed_names_the_files_whose_folders_to_resolve() -> None:
    grants = [GrantView("drive", "google_drive", "storage.files.read", {"folders": ["F1"]})]
    needed = facts_needed(DRIVE_GET, grants, "drive", {"file_id": "doc9"}, ["storage.files.read"])
    assert dict(needed.ancestors) == {"folders": ["doc9"]} and not needed.amount
    assert not facts_needed(DRIVE_GET, grants, "drive", {"file_id": "F1"}, ["storage.files.read"])
