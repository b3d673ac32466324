"""MIME both ways, without a server: the messages the Gmail tools build, and the text they read out of
Gmail's part trees."""

import base64
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from connectors.gmail.mime import build_raw, header, html_to_text, read_body


def _parse(raw: str) -> EmailMessage:
    assert "+" not in raw and "/" not in raw  # base64url, as Gmail wants `raw`
    message = email.message_from_bytes(base64.urlsafe_b64decode(raw), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _b64(text: str, charset: str = "utf-8") -> str:
    return base64.urlsafe_b64encode(text.encode(charset)).decode()


def test_build_raw_makes_a_correct_message_with_encoded_headers() -> None:
    raw = build_raw(
        to=["grace@example.com", "ada@example.com"],
        cc=["charles@example.com"],
        bcc=["audit@example.com"],
        subject="Über die Maschine ✓",
        body="Grüße,\nAda\n",
    )
    encoded = base64.urlsafe_b64decode(raw)
    assert b"\r\n" in encoded and "Über".encode() not in encoded.split(b"\r\n\r\n")[0]  # headers stay ASCII
    message = _parse(raw)
    assert message["To"] == "grace@example.com, ada@example.com"
    assert (message["Cc"], message["Bcc"]) == ("charles@example.com", "audit@example.com")
    assert message["Subject"] == "Über die Maschine ✓"
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert message.get_content() == "Grüße,\r\nAda\r\n"  # CRLF: the wire form
    assert message["From"] is None and message["Message-ID"] is None  # Gmail sets them


def test_build_raw_threads_a_reply() -> None:
    message = _parse(
        build_raw(
            to=["grace@example.com"],
            subject="Re: Plans",
            body="Yes",
            in_reply_to="<b@example.com>",
            references="<a@example.com> <b@example.com>",
        )
    )
    assert message["In-Reply-To"] == "<b@example.com>"
    assert message["References"] == "<a@example.com> <b@example.com>"


def test_html_to_text_keeps_visible_text_only() -> None:
    markup = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body><h1>News</h1>"
        "<p>Fish &amp; chips&nbsp;today</p><script>steal()</script><ul><li>one</li><li>two</li></ul>"
        "<div>a<br>b</div></body></html>"
    )
    assert html_to_text(markup) == "News\n\nFish & chips today\n\none\n\ntwo\n\na\nb"


def _part(mime: str, data: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"size": len(data or "")}
    if data is not None:
        body["data"] = data
    return {"mimeType": mime, "filename": "", "headers": [], "body": body, **extra}


def test_read_body_prefers_plain_text_and_lists_attachments() -> None:
    payload = {
        "mimeType": "multipart/mixed",
        "headers": [{"name": "Subject", "value": "Invoice"}],
        "parts": [
            {
                "mimeType": "multipart/alternative",
                "parts": [_part("text/html", _b64("<p>HTML</p>")), _part("text/plain", _b64("Plain"))],
            },
            {
                "mimeType": "application/pdf",
                "filename": "invoice.pdf",
                "body": {"size": 1234, "attachmentId": "ANGjdJ"},
            },
        ],
    }
    text, kind, attachments = read_body(payload)
    assert (text, kind) == ("Plain", "text")
    assert attachments == [
        {"filename": "invoice.pdf", "mime_type": "application/pdf", "size": 1234, "attachment_id": "ANGjdJ"}
    ]
    assert header(payload, "subject") == "Invoice" and header(payload, "From") is None


def test_read_body_falls_back_to_html_and_honours_the_charset() -> None:
    html_only = _part("text/html", _b64("<p>Caf&eacute; <b>open</b></p><script>x()</script>"))
    assert read_body(html_only)[:2] == ("Café open", "html")
    latin = _part(
        "text/plain",
        _b64("Grüße", "iso-8859-1"),
        headers=[{"name": "Content-Type", "value": 'text/plain; charset="ISO-8859-1"'}],
    )
    assert read_body(latin)[0] == "Grüße"
    unknown = _part(
        "text/plain", _b64("plain"), headers=[{"name": "Content-Type", "value": "text/plain; charset=x-nope"}]
    )
    assert read_body(unknown)[0] == "plain"
    assert read_body({"mimeType": "multipart/mixed", "parts": []}) == ("", "text", [])
