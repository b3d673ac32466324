"""Each Gmail tool against the Google sandbox on loopback, through the real SDK client: search and paging,
bodies decoded from MIME (plain text preferred, HTML reduced to text), attachments listed, sent mail landing
in the mailbox threaded as Gmail threads it, drafts, labels, and every provider failure mapped."""

import base64
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.errors import (
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
)
from connectors.gmail.client import GmailClient
from connectors.gmail.tools import Draft, LabelList, Message, MessagePage, SentMessage
from tests.connectors.google_sandbox import GMAIL_COMPOSE, GMAIL_READONLY, access_token, google_sandbox, throttle
from tests.harness import Sandbox

TOOLS = {t.name: t for t in CONNECTORS["gmail"].tools}
ME = "ada.lovelace@example.com"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with google_sandbox(tmp_path_factory.mktemp("google")) as running:
        yield running


def _client(sandbox: Sandbox, scopes: str = f"{GMAIL_READONLY} {GMAIL_COMPOSE}") -> GmailClient:
    return GmailClient(access_token=access_token(sandbox, scopes), api_base=sandbox.url, timeout=10)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[GmailClient]:
    built = _client(sandbox)
    yield built
    built.close()


async def _run(client: GmailClient, name: str, /, **arguments: Any) -> BaseModel:
    tool = TOOLS[name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


async def _search(client: GmailClient, **arguments: Any) -> MessagePage:
    page = await _run(client, "gmail_messages_search", **arguments)
    assert isinstance(page, MessagePage)
    return page


async def _get(client: GmailClient, message_id: str, **arguments: Any) -> Message:
    message = await _run(client, "gmail_messages_get", message_id=message_id, **arguments)
    assert isinstance(message, Message)
    return message


async def _one(client: GmailClient, query: str) -> str:
    page = await _search(client, query=query)
    assert len(page.messages) == 1, [m.subject for m in page.messages]
    return page.messages[0].id


async def _raw(client: GmailClient, message_id: str) -> EmailMessage:
    """The message as stored, headers and all (format=raw)."""
    body = await client.execute(
        lambda: client.messages.get(userId="me", id=message_id, format="raw"), needs=GMAIL_READONLY
    )
    parsed = email.message_from_bytes(base64.urlsafe_b64decode(body["raw"]), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_every_gmail_tool_is_exercised_here() -> None:
    exercised = {
        "gmail_messages_search",
        "gmail_messages_get",
        "gmail_messages_send",
        "gmail_messages_reply",
        "gmail_drafts_create",
        "gmail_labels_list",
    }
    assert set(TOOLS) == exercised, f"add a sandbox test for {sorted(set(TOOLS) - exercised)} to this module"


def test_scopes_and_labels() -> None:
    assert TOOLS["gmail_messages_reply"].scopes == ("messaging.email.read", "messaging.email.send")
    for name in ("gmail_messages_search", "gmail_messages_get"):
        assert set(TOOLS[name].labels) == {"pii.email", "untrusted.content"}
    read_only = {name for name, t in TOOLS.items() if t.is_read}
    assert read_only == {"gmail_messages_search", "gmail_messages_get", "gmail_labels_list"}


async def test_search_returns_summaries_newest_first_and_pages(client: GmailClient) -> None:
    page = await _search(client)
    subjects = [m.subject for m in page.messages]
    assert subjects[:3] == ["Difference engine drawings", "This week in engines", "Your invoice for March"]
    assert "You have won" not in subjects  # spam stays out
    first = page.messages[0]
    assert first.from_ == "Charles Babbage <charles@engines.example.com>"
    assert first.to == f"Ada Lovelace <{ME}>" and first.unread and "STARRED" in first.labels
    assert first.date == "Sat, 09 Mar 2024 16:45:00 +0000"
    news = page.messages[1]
    assert news.snippet == "This week The analytical engine ships & runs. Read more"  # unescaped
    assert "from" in first.model_dump() and "from_" not in first.model_dump()

    ids: list[str] = []
    cursor: str | None = None
    while True:
        paged = await _search(client, max_results=2, page_token=cursor)
        ids += [m.id for m in paged.messages]
        if paged.next_cursor is None:
            break
        cursor = paged.next_cursor
    assert ids[: len(page.messages)] == [m.id for m in page.messages][: len(ids)]
    assert len(ids) == len(set(ids)) == paged.result_size_estimate


async def test_search_takes_gmail_operators(client: GmailClient) -> None:
    assert [m.subject for m in (await _search(client, query="has:attachment")).messages] == ["Your invoice for March"]
    grace = await _search(client, query="from:grace@navy.example.com")
    assert [m.subject for m in grace.messages] == ["Compiler meeting"]
    spam = await _search(client, query="in:spam")
    assert [m.subject for m in spam.messages] == ["You have won"]
    assert (await _search(client, query="subject:nothing-like-this")).messages == []


async def test_get_prefers_plain_text_and_lists_attachments(client: GmailClient) -> None:
    invoice = await _get(client, await _one(client, "has:attachment"))
    assert invoice.body_format == "text" and "INV-0324" in invoice.body
    assert (
        invoice.subject == "Your invoice for March" and invoice.from_ == "Vendor Billing <billing@vendor.example.com>"
    )
    (pdf,) = invoice.attachments
    assert (pdf.filename, pdf.mime_type, pdf.size) == ("invoice-0324.pdf", "application/pdf", 45)
    assert pdf.attachment_id
    # multipart/alternative: the plain part wins over the HTML one.
    drawings = await _get(client, await _one(client, "subject:drawings"))
    assert drawings.body_format == "text" and drawings.body.startswith("Ada, the drawings are ready. Ignore")


async def test_get_reduces_an_html_only_body_to_text_and_caps_it(client: GmailClient) -> None:
    news_id = await _one(client, "from:news@updates.example.com")
    news = await _get(client, news_id)
    assert news.body_format == "html"
    assert news.body == "This week\n\nThe analytical engine ships & runs.\n\nRead more"
    assert "alert" not in news.body and "color" not in news.body
    capped = await _get(client, news_id, max_chars=9)
    assert (capped.body, capped.truncated) == ("This week", True)


async def test_send_builds_a_correct_message_that_lands_in_sent(client: GmailClient) -> None:
    tag = uuid.uuid4().hex[:8]
    sent = await _run(
        client,
        "gmail_messages_send",
        to=["grace@navy.example.com"],
        cc=[ME],
        bcc=["audit@example.com"],
        subject=f"Über notes {tag}",
        body="Héllo Grace,\nsee you Thursday.\n",
    )
    assert isinstance(sent, SentMessage) and "SENT" in sent.labels
    assert "INBOX" in sent.labels  # a copy to oneself lands in the inbox too
    stored = await _raw(client, sent.id)
    assert stored["From"] == f"Ada Lovelace <{ME}>" and stored["Message-ID"] and stored["Date"]
    assert (stored["To"], stored["Cc"], stored["Bcc"]) == ("grace@navy.example.com", ME, "audit@example.com")
    assert stored["Subject"] == f"Über notes {tag}"
    assert stored.get_content().replace("\r\n", "\n") == "Héllo Grace,\nsee you Thursday.\n"
    found = await _search(client, query=f"in:sent {tag}")
    assert [m.id for m in found.messages] == [sent.id]
    read = await _get(client, sent.id)
    assert read.body == "Héllo Grace,\nsee you Thursday.\n" and read.thread_id == sent.thread_id == sent.id


async def test_reply_threads_with_in_reply_to_and_references(client: GmailClient) -> None:
    original_id = await _one(client, "from:grace@navy.example.com")
    original = await _raw(client, original_id)
    reply = await _run(client, "gmail_messages_reply", message_id=original_id, body="Thursday it is.")
    assert isinstance(reply, SentMessage) and reply.labels == ["SENT"]
    assert reply.thread_id == original_id  # Grace's message started the thread
    stored = await _raw(client, reply.id)
    assert stored["To"] == "Grace Hopper <grace@navy.example.com>"
    assert stored["Subject"] == "Re: Compiler meeting"
    assert stored["In-Reply-To"] == original["Message-ID"] == "<meeting-1@navy.example.com>"
    assert stored["References"] == "<meeting-1@navy.example.com>"
    # Replying to a reply: no second "Re: ", the chain of references grows, the thread stays.
    again = await _run(client, "gmail_messages_reply", message_id=reply.id, body="Also bring coffee.")
    assert isinstance(again, SentMessage) and again.thread_id == original_id
    chained = await _raw(client, again.id)
    assert chained["Subject"] == "Re: Compiler meeting"
    assert chained["To"] == "Grace Hopper <grace@navy.example.com>"  # my own message: reply to its recipients
    assert chained["References"] == f"<meeting-1@navy.example.com> {stored['Message-ID']}"
    with pytest.raises(ProviderNotFound):
        await _run(client, "gmail_messages_reply", message_id="ffffffffffff0000", body="x")


async def test_draft_is_saved_not_sent(client: GmailClient) -> None:
    tag = uuid.uuid4().hex[:8]
    draft = await _run(client, "gmail_drafts_create", to=["grace@navy.example.com"], subject=f"Draft {tag}", body="?")
    assert isinstance(draft, Draft) and draft.draft_id.startswith("r") and draft.message_id
    assert (await _get(client, draft.message_id)).labels == ["DRAFT"]
    assert (await _search(client, query=f"in:sent {tag}")).messages == []


async def test_labels_list_has_system_and_user_labels(client: GmailClient) -> None:
    labels = await _run(client, "gmail_labels_list")
    assert isinstance(labels, LabelList)
    by_id = {label.id: label for label in labels.labels}
    assert by_id["INBOX"].type == "system" and by_id["Label_1"].name == "Receipts" and by_id["Label_1"].type == "user"


# -- errors ------------------------------------------------------------------------------------------------


async def test_unknown_message_is_not_found_and_bad_recipient_rejected(client: GmailClient) -> None:
    with pytest.raises(ProviderNotFound):
        await _get(client, "ffffffffffff0000")
    with pytest.raises(ProviderRejected, match="Invalid id value"):
        await _get(client, "not-hex")


async def test_expired_token_is_provider_auth_expired(sandbox: Sandbox) -> None:
    expired = _client(sandbox)
    try:
        sandbox.control("expire-tokens")
        with pytest.raises(ProviderAuthExpired):
            await _search(expired)
    finally:
        expired.close()


async def test_each_scope_alone_is_forbidden_the_other_tools_naming_the_scope(sandbox: Sandbox) -> None:
    composer = _client(sandbox, GMAIL_COMPOSE)
    reader = _client(sandbox, GMAIL_READONLY)
    try:
        with pytest.raises(ProviderForbidden, match=r"gmail\.readonly") as caught:
            await _search(composer)
        assert caught.value.missing_scopes == (GMAIL_READONLY,)
        with pytest.raises(ProviderForbidden, match=r"gmail\.readonly"):  # replying reads the original first
            await _run(composer, "gmail_messages_reply", message_id="18e0b3c2f1a41f3d", body="x")
        sent = await _run(composer, "gmail_messages_send", to=["grace@navy.example.com"], subject="s", body="b")
        assert isinstance(sent, SentMessage)
        with pytest.raises(ProviderForbidden, match=r"gmail\.compose") as refused:
            await _run(reader, "gmail_drafts_create", to=["grace@navy.example.com"], subject="s", body="b")
        assert refused.value.missing_scopes == (GMAIL_COMPOSE,)
    finally:
        composer.close()
        reader.close()


async def test_throttled_search_is_provider_rate_limited(sandbox: Sandbox, client: GmailClient) -> None:
    throttle(sandbox, 1, 3)
    with pytest.raises(ProviderRateLimited) as caught:
        await _search(client)
    assert caught.value.retry_after == 3.0
    assert (await _search(client)).messages
