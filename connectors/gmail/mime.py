"""MIME both ways: a correct RFC 5322 message from an agent's fields (encoded as Gmail's base64url `raw`),
and readable text from Gmail's part tree (text/plain preferred, HTML reduced to its text)."""

import base64
import binascii
import re
from email.message import EmailMessage
from email.policy import SMTP
from html.parser import HTMLParser
from typing import Any

__all__ = ["build_raw", "header", "html_to_text", "read_body"]

_BLOCKS = frozenset({"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
_INVISIBLE = frozenset({"script", "style", "head", "title", "template", "noscript"})


def build_raw(
    *,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> str:
    """The message as Gmail's `raw`: RFC 5322 with CRLF line ends, base64url. Non-ASCII subjects become
    encoded words and the body gets a transfer encoding; Gmail fills in From, Date and Message-ID."""
    message = EmailMessage(policy=SMTP)
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    message["Subject"] = subject
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    return base64.urlsafe_b64encode(message.as_bytes()).decode("ascii")


def header(payload: dict[str, Any], name: str) -> str | None:
    """A header of a Gmail payload, by case-insensitive name."""
    wanted = name.lower()
    for item in payload.get("headers") or []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == wanted:
            return str(item.get("value", ""))
    return None


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """The visible text of an HTML body: scripts, styles and tags dropped, blocks on their own lines."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = (re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in "".join(parser.out).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _charset(part: dict[str, Any]) -> str:
    match = re.search(r'charset="?([\w.:-]+)"?', header(part, "Content-Type") or "", re.I)
    return match[1] if match else "utf-8"


def _decode(part: dict[str, Any]) -> str | None:
    data = (part.get("body") or {}).get("data")
    if not isinstance(data, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None
    try:
        return raw.decode(_charset(part), "replace")
    except LookupError:  # an unknown charset name
        return raw.decode("utf-8", "replace")


def _walk(part: dict[str, Any]) -> list[dict[str, Any]]:
    found = [part]
    for child in part.get("parts") or []:
        if isinstance(child, dict):
            found += _walk(child)
    return found


def read_body(payload: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """(text, "text" | "html", attachments) of a `format=full` payload: the first text/plain part that is not
    an attachment, else the first text/html one reduced to text."""
    parts = _walk(payload)
    attachments = [
        {
            "filename": str(p["filename"]),
            "mime_type": str(p.get("mimeType") or "application/octet-stream"),
            "size": int((p.get("body") or {}).get("size") or 0),
            "attachment_id": (p.get("body") or {}).get("attachmentId"),
        }
        for p in parts
        if p.get("filename")
    ]
    inline = [p for p in parts if not p.get("filename") and not p.get("parts")]
    for mime, kind in (("text/plain", "text"), ("text/html", "html")):
        for part in inline:
            if str(part.get("mimeType", "")).lower() == mime and (text := _decode(part)) is not None:
                text = text.replace("\r\n", "\n")
                return (text if kind == "text" else html_to_text(text)), kind, attachments
    return "", "text", attachments
