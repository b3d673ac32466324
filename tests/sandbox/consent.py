"""A browser's part in a sandbox's OAuth consent, for tests that drive the sandboxes in process."""

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

__all__ = ["ConsentForm", "approve", "pkce"]


class _Answer(Protocol):
    """An httpx response; TestClient's come from `httpx2`, a different class with the same shape."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Any: ...


class _Browser(Protocol):
    def get(self, url: str, *, params: Any = ...) -> Any: ...

    def post(self, url: str, *, data: Any = ..., follow_redirects: bool = ...) -> Any: ...


class ConsentForm(HTMLParser):
    """What a browser would submit from the consent page, and the scopes it lists (each in a `<code>`)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}
        self.scopes: list[str] = []
        self._button: str | None = None
        self._code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a["value"]
        elif tag == "button":
            self._button = a["value"]
        self._code = tag == "code"

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.buttons[data] = self._button
            self._button = None
        elif self._code:
            self.scopes.append(data)
            self._code = False


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge, computed here rather than by the code under test."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def approve(browser: _Browser, path: str, params: dict[str, str], *, decision: str, redirect: str) -> dict[str, str]:
    """GET the consent page, press the button labelled `decision`, return the redirect's query parameters."""
    page: _Answer = browser.get(path, params=params)
    assert page.status_code == 200, page.text
    form = ConsentForm()
    form.feed(page.text)
    answer: _Answer = browser.post(
        form.action, data={**form.fields, "decision": form.buttons[decision]}, follow_redirects=False
    )
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    return {k: v[0] for k, v in parse_qs(location.query).items()}
