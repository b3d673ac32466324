"""Policy annotations of the Slack, Gmail and Google Drive tools, checked through the real `scopes.decide` and
result shaping: an allow-list admits the calls inside it and refuses the others with `constraint_violated`
before any provider is called; lists come back filtered; redaction and fingerprints find the labelled data."""

from typing import Any

import pytest

from connectors import TOOLS, Tool
from scopes import (
    CallFacts,
    Decision,
    FlowContext,
    FlowOrigin,
    GrantView,
    SessionState,
    decide,
    fingerprint_result,
    shape_result,
    unlisted_resources,
)

KEY = b"k" * 32
PROVIDERS = ("slack", "gmail", "google_drive")
OURS = sorted(name for name, t in TOOLS.items() if t.provider in PROVIDERS)

CHANNELS = {"channels": ["C0ALLOWED"]}
DOMAINS = {"recipients_domain": ["example.com", "*.example.org"]}
FOLDERS = {"folders": ["1AllowedFolder"]}
SUBFOLDER = "1SubFolderOfAllowed"
FILE_IN = "1FileInsideAllowed"
FILE_OUT = "1FileElsewhere"
# What the hub resolves (a file's and a subfolder's folders up to the root), for `folders`.
ANCESTORS = {
    SUBFOLDER: ["1AllowedFolder", "0RootId"],
    FILE_IN: [SUBFOLDER, "1AllowedFolder", "0RootId"],
    FILE_OUT: ["1OtherFolder", "0RootId"],
    "1OtherFolder": ["0RootId"],
}


def _grants(t: Tool, constraints: dict[str, Any]) -> list[GrantView]:
    return [GrantView("acct", t.provider, scope, constraints) for scope in t.scopes]


def _decide(
    name: str,
    constraints: dict[str, Any],
    arguments: dict[str, Any],
    facts: CallFacts | None = None,
    **extra: Any,
) -> Decision:
    t = TOOLS[name]
    validated = t.input_model.model_validate(arguments).model_dump()
    return decide(
        tool=t.name,
        provider=t.provider,
        needed=t.scopes,
        grants=_grants(t, constraints),
        connection=None,
        policy=t.policy,
        arguments=validated,
        facts=facts if facts is not None else CallFacts(ancestors=ANCESTORS),
        **extra,
    )


def _refused(decision: Decision, constraint: str) -> None:
    assert decision.outcome == "deny" and decision.reason == "constraint_violated", decision
    assert any(r.constraint == constraint and r.effect == "deny" for r in decision.rules)


# Every tool declares what it touches, so an allow-list no longer refuses it blindly.


@pytest.mark.parametrize("name", OURS)
def test_every_tool_is_annotated(name: str) -> None:
    assert TOOLS[name].policy.annotated


EXPECTED = {
    # name: (sink, risk, limit)
    "slack_channels_list": (False, "low", "limit"),
    "slack_messages_history": (False, "low", "limit"),
    "slack_thread_replies": (False, "low", "limit"),
    "slack_messages_post": (True, "low", None),
    "slack_thread_reply": (True, "low", None),
    "slack_users_lookup": (False, "low", None),
    "gmail_messages_search": (False, "low", "max_results"),
    "gmail_messages_get": (False, "low", None),
    "gmail_messages_send": (True, "high", None),
    "gmail_messages_reply": (True, "high", None),
    "gmail_drafts_create": (True, "low", None),
    "gmail_labels_list": (False, "low", None),
    "gdrive_files_list": (False, "low", "page_size"),
    "gdrive_files_search": (False, "low", "page_size"),
    "gdrive_files_get": (False, "low", None),
    "gdrive_files_read": (False, "low", None),
    "gdrive_files_upload": (True, "low", None),
    "gdrive_folders_create": (False, "low", None),
    "gdrive_files_move": (False, "low", None),
    "gdrive_files_share": (True, "high", None),
}


def test_sink_risk_and_limit_of_every_tool() -> None:
    assert sorted(EXPECTED) == OURS
    for name, (sink, risk, limit) in EXPECTED.items():
        policy = TOOLS[name].policy
        assert (policy.sink, policy.risk, policy.limit) == (sink, risk, limit), name


# Slack: channels.

SLACK_CALLS = [
    ("slack_messages_history", {"channel": "C0ALLOWED", "limit": 10}, {"channel": "C0SECRET"}),
    (
        "slack_thread_replies",
        {"channel": "C0ALLOWED", "thread_ts": "1712345678.000100"},
        {"channel": "G0PRIVATE", "thread_ts": "1712345678.000100"},
    ),
    ("slack_messages_post", {"channel": "C0ALLOWED", "text": "Standup at 10"}, {"channel": "C0SECRET", "text": "hi"}),
    (
        "slack_thread_reply",
        {"channel": "C0ALLOWED", "thread_ts": "1712345678.000100", "text": "Done", "also_send_to_channel": True},
        {"channel": "C0SECRET", "thread_ts": "1712345678.000100", "text": "Done"},
    ),
]


@pytest.mark.parametrize(("name", "inside", "outside"), SLACK_CALLS, ids=[c[0] for c in SLACK_CALLS])
def test_slack_channel_arguments_are_checked(name: str, inside: dict[str, Any], outside: dict[str, Any]) -> None:
    assert _decide(name, CHANNELS, inside).allowed
    refused = _decide(name, CHANNELS, outside)
    _refused(refused, "channels")
    assert repr(outside["channel"]) in refused.detail


def test_slack_channels_list_is_filtered_to_the_allowed_channels() -> None:
    t = TOOLS["slack_channels_list"]
    decision = _decide(t.name, CHANNELS, {"limit": 200})
    assert decision.allowed and any(r.effect == "filter" and r.constraint == "channels" for r in decision.rules)
    page = t.output_model.model_validate(
        {
            "channels": [
                {"id": "C0ALLOWED", "name": "general", "is_private": False, "is_member": True, "is_archived": False},
                {"id": "C0SECRET", "name": "board-only", "is_private": True, "is_member": True, "is_archived": False},
                {"id": "G0PRIVATE", "name": "m-and-a", "is_private": True, "is_member": False, "is_archived": False},
            ],
            "next_cursor": "dGVhbTpDMDYx",
        }
    )
    shaped = shape_result(page.model_dump(mode="json"), policy=t.policy, results=decision.results, key=KEY)
    assert [c["id"] for c in shaped.result["channels"]] == ["C0ALLOWED"]
    assert "board-only" not in repr(shaped.result) and "m-and-a" not in repr(shaped.result)
    assert shaped.result["next_cursor"] == "dGVhbTpDMDYx"


def test_slack_users_lookup_touches_no_channel() -> None:
    decision = _decide("slack_users_lookup", CHANNELS, {"user_id": "U012AB3CD"})
    assert decision.allowed
    assert any(r.constraint == "channels" and "does not apply" in r.detail for r in decision.rules)


def test_slack_max_results_clamps_the_page_size() -> None:
    decision = _decide("slack_messages_history", {**CHANNELS, "max_results": 5}, {"channel": "C0ALLOWED"})
    assert decision.allowed and decision.changes == {"limit": 5}


# Gmail: recipient domains.

SEND = {"subject": "Q3 numbers", "body": "Attached below."}
GMAIL_CALLS = [
    (
        "gmail_messages_send",
        {**SEND, "to": ["Grace@EXAMPLE.com"], "cc": ["ops@eu.example.org"], "bcc": ["audit@example.com"]},
        {**SEND, "to": ["grace@example.com"], "bcc": ["drop@evil.test"]},
    ),
    (
        "gmail_drafts_create",
        {**SEND, "to": ["grace@example.com", "ada@example.com"]},
        {**SEND, "to": ["grace@example.com"], "cc": ["someone@example.org"]},  # the apex of *.example.org
    ),
    (
        "gmail_messages_send",
        {**SEND, "to": ["grace@example.com"]},
        {**SEND, "to": ["grace@example.com.evil.test"]},
    ),
]


@pytest.mark.parametrize(
    ("name", "inside", "outside"), GMAIL_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(GMAIL_CALLS)]
)
def test_gmail_recipients_are_checked(name: str, inside: dict[str, Any], outside: dict[str, Any]) -> None:
    assert _decide(name, DOMAINS, inside).allowed
    _refused(_decide(name, DOMAINS, outside), "recipients_domain")


def test_gmail_reply_needs_its_resolved_recipients() -> None:
    name = "gmail_messages_reply"
    args = {"message_id": "18e0b3c2f1a41f3d", "body": "Thanks, will do."}
    inside = CallFacts(resources={"recipients_domain": ["grace@example.com", "ops@eu.example.org"]})
    outside = CallFacts(resources={"recipients_domain": ["grace@example.com", "mallory@evil.test"]})
    assert _decide(name, DOMAINS, args, inside).allowed
    _refused(_decide(name, DOMAINS, args, outside), "recipients_domain")
    unresolved = _decide(name, DOMAINS, args, CallFacts())
    _refused(unresolved, "recipients_domain")
    assert "could not be determined" in unresolved.detail
    _refused(_decide(name, DOMAINS, {**args, "cc": ["x@evil.test"]}, inside), "recipients_domain")


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("gmail_messages_search", {"query": "from:grace@evil.test"}),
        ("gmail_messages_get", {"message_id": "18e0b3c2f1a41f3d"}),
        ("gmail_labels_list", {}),
    ],
)
def test_gmail_reads_are_not_limited_by_recipient_domains(name: str, arguments: dict[str, Any]) -> None:
    decision = _decide(name, DOMAINS, arguments)
    assert decision.allowed
    assert any(r.constraint == "recipients_domain" and "does not apply" in r.detail for r in decision.rules)


def _gmail_message() -> dict[str, Any]:
    t = TOOLS["gmail_messages_get"]
    message = t.output_model.model_validate(
        {
            "id": "18e0b3c2f1a41f3d",
            "thread_id": "18e0b3c2f1a41f3d",
            "from": "Grace Hopper <grace@example.com>",
            "to": "Ada Lovelace <ada@company.test>, bob@company.test",
            "cc": "ops@eu.example.org",
            "reply_to": "billing@example.com",
            "subject": "Invoice for Q3",
            "date": "Tue, 2 Apr 2024 10:00:00 +0000",
            "labels": ["INBOX", "UNREAD"],
            "body": "Hi Ada,\nplease forward this to carol@partner.test and call me.\n-- \nGrace",
            "body_format": "text",
            "attachments": [{"filename": "invoice.pdf", "mime_type": "application/pdf", "size": 1234}],
        }
    )
    data: dict[str, Any] = message.model_dump(mode="json")
    return data


ADDRESSES = ("grace@example.com", "ada@company.test", "bob@company.test", "ops@eu.example.org", "carol@partner.test")


def test_gmail_get_redaction_masks_every_email() -> None:
    t = TOOLS["gmail_messages_get"]
    decision = _decide(t.name, {"redact": ["pii.email"]}, {"message_id": "18e0b3c2f1a41f3d"})
    assert decision.allowed and decision.results.redact == ("pii.email",)
    shaped = shape_result(_gmail_message(), policy=t.policy, results=decision.results, key=KEY)
    text = repr(shaped.result).lower()
    assert not any(address in text for address in (*ADDRESSES, "billing@example.com"))
    assert shaped.result["from"] == "Grace Hopper <g***@example.com>"
    assert shaped.result["to"] == "Ada Lovelace <a***@company.test>, b***@company.test"
    assert shaped.result["reply_to"] == "b***@example.com"
    assert "c***@partner.test" in shaped.result["body"]
    assert shaped.result["subject"] == "Invoice for Q3" and shaped.result["id"] == "18e0b3c2f1a41f3d"
    assert any("pii.email" in note for note in shaped.notes)


def test_gmail_get_redaction_of_untrusted_content_masks_the_senders_text() -> None:
    t = TOOLS["gmail_messages_get"]
    decision = _decide(t.name, {"redact": ["untrusted.content"]}, {"message_id": "18e0b3c2f1a41f3d"})
    shaped = shape_result(_gmail_message(), policy=t.policy, results=decision.results, key=KEY).result
    for masked in (shaped["body"], shaped["subject"], shaped["attachments"][0]["filename"]):
        assert masked.startswith("[redacted:")
    assert shaped["id"] == "18e0b3c2f1a41f3d" and shaped["attachments"][0]["size"] == 1234


def test_gmail_addresses_read_are_blocked_from_a_send_without_a_flow_rule() -> None:
    origin = TOOLS["gmail_messages_get"]
    stored = {
        fp: FlowOrigin(label, origin.name)
        for fp, label in fingerprint_result(_gmail_message(), origin.policy, KEY).items()
    }
    args = {**SEND, "to": ["grace@example.com"], "body": "Loop in carol@partner.test please"}
    blocked = _decide("gmail_messages_send", {}, args, flow=FlowContext(stored, KEY))
    assert blocked.reason == "flow_blocked" and "gmail_messages_get" in blocked.detail
    allowed = _decide(
        "gmail_messages_send", {}, args, flow=FlowContext(stored, KEY, rules=[("pii.email", "messaging.email.send")])
    )
    assert allowed.allowed


# Google Drive: folders (and the files inside them, through the folders the hub resolves).

DRIVE_CALLS = [
    ("gdrive_files_list", {"folder_id": "1AllowedFolder"}, {"folder_id": "1OtherFolder"}),
    ("gdrive_files_list", {"folder_id": SUBFOLDER, "page_size": 50}, {"folder_id": "root"}),
    ("gdrive_files_get", {"file_id": FILE_IN}, {"file_id": FILE_OUT}),
    ("gdrive_files_read", {"file_id": FILE_IN, "max_chars": 1000}, {"file_id": FILE_OUT}),
    (
        "gdrive_files_upload",
        {"name": "notes.md", "content": "# Notes", "folder_id": SUBFOLDER},
        {"name": "notes.md", "content": "# Notes"},  # 'root'
    ),
    (
        "gdrive_folders_create",
        {"name": "Q3", "parent_id": "1AllowedFolder"},
        {"name": "Q3", "parent_id": "1OtherFolder"},
    ),
    (
        "gdrive_files_move",
        {"file_id": FILE_IN, "to_folder_id": "1AllowedFolder"},
        {"file_id": FILE_IN, "to_folder_id": "1OtherFolder"},
    ),
    (
        "gdrive_files_move",
        {"file_id": FILE_IN, "to_folder_id": SUBFOLDER},
        {"file_id": FILE_OUT, "to_folder_id": SUBFOLDER},
    ),
    (
        "gdrive_files_share",
        {"file_id": FILE_IN, "email": "grace@example.com", "role": "reader"},
        {"file_id": FILE_OUT, "email": "grace@example.com", "role": "reader"},
    ),
]


@pytest.mark.parametrize(
    ("name", "inside", "outside"), DRIVE_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(DRIVE_CALLS)]
)
def test_drive_folder_arguments_are_checked(name: str, inside: dict[str, Any], outside: dict[str, Any]) -> None:
    assert _decide(name, FOLDERS, inside).allowed
    _refused(_decide(name, FOLDERS, outside), "folders")


def test_drive_file_ids_are_what_the_hub_must_resolve() -> None:
    t = TOOLS["gdrive_files_move"]
    arguments = {"file_id": FILE_IN, "to_folder_id": "1AllowedFolder"}
    assert unlisted_resources(t.policy, _grants(t, FOLDERS), arguments) == {"folders": [FILE_IN]}
    # Without the resolved folders a file id is outside the allow-list: fail closed.
    _refused(_decide(t.name, FOLDERS, arguments, CallFacts()), "folders")


def test_drive_share_checks_the_recipient_domain_too() -> None:
    constraints = {**FOLDERS, **DOMAINS}
    share = {"file_id": FILE_IN, "role": "writer"}
    assert _decide("gdrive_files_share", constraints, {**share, "email": "grace@example.com"}).allowed
    _refused(_decide("gdrive_files_share", constraints, {**share, "email": "grace@gmail.test"}), "recipients_domain")
    # Other storage tools send nothing to a person: a recipients_domain list does not apply to them.
    assert _decide(
        "gdrive_files_upload", constraints, {"name": "a.txt", "content": "x", "folder_id": SUBFOLDER}
    ).allowed


def _files(*items: tuple[str, list[str]]) -> dict[str, Any]:
    page = TOOLS["gdrive_files_search"].output_model.model_validate(
        {
            "files": [
                {
                    "id": file_id,
                    "name": f"{file_id}.txt",
                    "mime_type": "text/plain",
                    "is_folder": False,
                    "parents": parents,
                }
                for file_id, parents in items
            ],
            "next_cursor": None,
        }
    )
    data: dict[str, Any] = page.model_dump(mode="json")
    return data


@pytest.mark.parametrize(
    ("name", "arguments"),
    [("gdrive_files_search", {"query": "name contains 'budget'"}), ("gdrive_files_list", {"folder_id": SUBFOLDER})],
)
def test_drive_lists_are_filtered_to_the_allowed_folders(name: str, arguments: dict[str, Any]) -> None:
    t = TOOLS[name]
    decision = _decide(name, FOLDERS, arguments)
    assert decision.allowed and any(r.effect == "filter" and r.constraint == "folders" for r in decision.rules)
    result = _files(
        ("1Direct", ["1AllowedFolder"]),
        ("1Nested", [SUBFOLDER]),
        ("1Secret", ["1OtherFolder"]),
        ("1Orphan", []),
    )
    shaped = shape_result(result, policy=t.policy, results=decision.results, key=KEY, ancestors=ANCESTORS)
    assert [f["id"] for f in shaped.result["files"]] == ["1Direct", "1Nested"]
    # Without the resolved folders only the direct children of an allowed folder are kept.
    bare = shape_result(result, policy=t.policy, results=decision.results, key=KEY)
    assert [f["id"] for f in bare.result["files"]] == ["1Direct"]


def test_drive_get_redaction_masks_owner_emails() -> None:
    t = TOOLS["gdrive_files_get"]
    decision = _decide(t.name, {**FOLDERS, "redact": ["pii.email"]}, {"file_id": FILE_IN})
    details = t.output_model.model_validate(
        {
            "id": FILE_IN,
            "name": "budget.xlsx",
            "mime_type": "application/vnd.google-apps.spreadsheet",
            "is_folder": False,
            "parents": [SUBFOLDER],
            "owners": ["grace@example.com"],
        }
    ).model_dump(mode="json")
    shaped = shape_result(details, policy=t.policy, results=decision.results, key=KEY).result
    assert shaped["owners"] == ["g***@example.com"] and shaped["parents"] == [SUBFOLDER]


def test_writes_without_free_data_run_in_an_untrusted_session_but_sinks_wait() -> None:
    session = SessionState(untrusted=True, policy="refuse", source="gmail_messages_get")
    move = {"file_id": FILE_IN, "to_folder_id": SUBFOLDER}
    assert _decide("gdrive_files_move", {}, move, session=session).allowed
    assert _decide("gdrive_folders_create", {}, {"name": "Q3"}, session=session).allowed
    upload = {"name": "a.txt", "content": "x"}
    assert _decide("gdrive_files_upload", {}, upload, session=session).reason == "flow_blocked"
    draft = {**SEND, "to": ["grace@example.com"]}
    assert _decide("gmail_drafts_create", {}, draft, session=session).reason == "flow_blocked"
