"""The sandbox mailbox: messages kept as raw RFC 5322 bytes, shown the way Gmail shows them (payload part
tree, snippets, attachment ids), searched with a subset of Gmail's query language, threaded as Gmail does.

Search supports `from: to: cc: bcc: subject: label: in: is: has:attachment filename: after: before:
newer_than: older_than:`, quoted phrases, bare words (matched against headers and text), `-` to negate and
`OR` between two terms; other terms are AND-ed.
"""

import base64
import email
import email.policy
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

__all__ = ["Mailbox", "StoredMessage", "html_text", "normalized_subject"]

_ANYWHERE_HIDDEN = {"SPAM", "TRASH"}
_TERM = re.compile(r'\s*(-?)(?:(\w+):)?("[^"]*"|\([^)]*\)|\S+)')


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def normalized_subject(subject: str) -> str:
    return re.sub(r"^\s*((re|fwd?|aw)\s*:\s*)+", "", subject, flags=re.I).strip().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: set[str]
    internal_date: datetime
    history_id: int
    parsed: EmailMessage = field(init=False)
    attachments: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.parsed = parsed

    def header(self, name: str) -> str:
        value = self.parsed.get(name)
        return str(value) if value is not None else ""

    def addresses(self, *names: str) -> list[str]:
        return [a.lower() for _, a in getaddresses([self.header(n) for n in names]) if a]

    def text(self) -> str:
        plain, markup = "", ""
        for part in self.parsed.walk():
            if part.is_multipart() or part.get_filename():
                continue
            if part.get_content_type() == "text/plain" and not plain:
                plain = str(part.get_content())
            elif part.get_content_type() == "text/html" and not markup:
                markup = str(part.get_content())
        return plain or html_text(markup)

    def snippet(self) -> str:
        # Gmail's snippets are HTML-escaped.
        return html.escape(" ".join(self.text().split())[:200]).replace("&#x27;", "&#39;")

    def has_attachment(self) -> bool:
        return any(part.get_filename() for part in self.parsed.walk() if not part.is_multipart())

    def payload(self, *, metadata_headers: list[str] | None = None) -> dict[str, Any]:
        """The message as Gmail's part tree (`format=full`), or only headers (`format=metadata`)."""
        if metadata_headers is not None:
            wanted = {h.lower() for h in metadata_headers}
            headers = [
                {"name": k, "value": str(v)} for k, v in self.parsed.items() if not wanted or k.lower() in wanted
            ]
            return {"mimeType": self.parsed.get_content_type(), "headers": headers}
        return self._part(self.parsed, "")

    def _part(self, part: EmailMessage, part_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"size": 0}
        shown: dict[str, Any] = {
            "partId": part_id,
            "mimeType": part.get_content_type(),
            "filename": part.get_filename() or "",
            "headers": [{"name": k, "value": str(v)} for k, v in part.items()],
            "body": body,
        }
        if part.is_multipart():
            children = [p for p in part.iter_parts() if isinstance(p, EmailMessage)]
            prefix = f"{part_id}." if part_id else ""
            shown["parts"] = [self._part(child, f"{prefix}{i}") for i, child in enumerate(children)]
            return shown
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        body["size"] = len(data)
        if part.get_filename():
            digest = hashlib.sha256(f"{self.id}/{part_id}".encode()).digest()
            attachment_id = "ANGjdJ" + base64.urlsafe_b64encode(digest * 3).decode().rstrip("=")
            self.attachments[attachment_id] = data
            body["attachmentId"] = attachment_id
        else:
            body["data"] = _b64(data)
        return shown


def _when(value: str) -> datetime:
    return datetime.strptime(value.replace("-", "/"), "%Y/%m/%d").replace(tzinfo=UTC)


def _relative(value: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([dmy])", value)
    if match is None:
        raise ValueError(value)
    count, unit = int(match[1]), match[2]
    return timedelta(days=count * {"d": 1, "m": 31, "y": 365}[unit])


class Mailbox:
    """One account's mail, newest first; callers hold the sandbox's lock."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.messages: dict[str, StoredMessage] = {}
        self.drafts: dict[str, str] = {}  # draft id → message id
        self._next = 0x18E0B3C2F1A40000
        self._history = 1000

    def add(
        self, raw: bytes, labels: set[str], *, thread_id: str | None = None, when: datetime | None = None
    ) -> StoredMessage:
        self._next += 0x1F3D
        self._history += 7
        message_id = f"{self._next:x}"
        stored = StoredMessage(
            message_id, thread_id or message_id, raw, set(labels), when or datetime.now(UTC), self._history
        )
        self.messages[message_id] = stored
        return stored

    def new_draft_id(self) -> str:
        return "r" + str(secrets.randbelow(10**19)).zfill(19)

    def thread_for(self, message: EmailMessage, requested: str | None) -> str | None:
        """The thread a new message joins: Gmail keeps `requested` (or finds one) only when the message's
        In-Reply-To/References name a message of that thread and the subjects match."""
        refs = set(re.findall(r"<[^>]+>", f"{message.get('In-Reply-To', '')} {message.get('References', '')}"))
        subject = normalized_subject(str(message.get("Subject", "")))
        for stored in self.messages.values():
            if requested is not None and stored.thread_id != requested:
                continue
            if stored.header("Message-ID") in refs and normalized_subject(stored.header("Subject")) == subject:
                return stored.thread_id
        return None

    # -- search --------------------------------------------------------------------------------------------

    def search(self, q: str, *, label_ids: list[str], include_spam_trash: bool) -> list[StoredMessage]:
        terms = self._terms(q)
        # Spam and trash stay hidden unless asked for, as in Gmail's own search box.
        hidden = set() if include_spam_trash else set(_ANYWHERE_HIDDEN)
        for _, key, value in terms:
            if key == "in" and value.lower() in ("spam", "trash", "anywhere"):
                hidden.discard(value.upper())
                if value.lower() == "anywhere":
                    hidden.clear()
        found = []
        for message in self.messages.values():
            if message.labels & hidden:
                continue
            if not all(label in message.labels for label in label_ids):
                continue
            if self._matches(message, terms):
                found.append(message)
        found.sort(key=lambda m: (m.internal_date, m.id), reverse=True)
        return found

    @staticmethod
    def _terms(q: str) -> list[tuple[bool, str, str]]:
        """(negated, key, value) per term; `a OR b` becomes one term with key `|`."""
        terms: list[tuple[bool, str, str]] = []
        for match in _TERM.finditer(q):
            negated, key, value = match[1] == "-", (match[2] or "").lower(), match[3].strip('"()')
            if not key and value == "OR" and terms:
                terms.append((False, "|", ""))
                continue
            terms.append((negated, key, value))
        return terms

    def _matches(self, message: StoredMessage, terms: list[tuple[bool, str, str]]) -> bool:
        results: list[bool] = []
        pending_or = False
        for negated, key, value in terms:
            if key == "|":
                pending_or = True
                continue
            hit = self._term(message, key, value) != negated
            if pending_or and results:
                results[-1] = results[-1] or hit
            else:
                results.append(hit)
            pending_or = False
        return all(results)

    def _term(self, message: StoredMessage, key: str, value: str) -> bool:
        needle = value.lower()
        if key in ("from", "to", "cc", "bcc"):
            return any(needle in a for a in [message.header(key).lower(), *message.addresses(key)])
        if key == "subject":
            return needle in message.header("Subject").lower()
        if key in ("label", "in"):
            wanted = {"anywhere": None, "drafts": "DRAFT", "draft": "DRAFT"}.get(needle, needle.upper())
            return (
                wanted is None or wanted in message.labels or any(label.lower() == needle for label in message.labels)
            )
        if key == "is":
            if needle == "read":
                return "UNREAD" not in message.labels
            return needle.upper() in message.labels
        if key == "has":
            return needle == "attachment" and message.has_attachment()
        if key == "filename":
            return any(needle in (p.get_filename() or "").lower() for p in message.parsed.walk())
        try:
            if key == "after":
                return message.internal_date >= _when(value)
            if key == "before":
                return message.internal_date < _when(value)
            if key == "newer_than":
                return message.internal_date >= datetime.now(UTC) - _relative(value)
            if key == "older_than":
                return message.internal_date < datetime.now(UTC) - _relative(value)
        except ValueError:
            return False
        haystack = " ".join(
            [message.header("From"), message.header("To"), message.header("Subject"), message.text()]
        ).lower()
        return (f"{key}:{needle}" if key else needle) in haystack
