"""Driving the admin page like a browser would: sign in with a CLI link, read CSRF tokens and keys off pages."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.harness import Hub

__all__ = ["CSRF", "KEY", "csrf_of", "htmx", "login_link", "signed_in"]

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
KEY = re.compile(r"sbk_[A-Za-z0-9_-]{43}")


def login_link(hub: Hub) -> str:
    made = hub.cli("admin", "link")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{hub.url}/admin/login?token=sbl_")
    return link


@contextmanager
def signed_in(hub: Hub) -> Iterator[httpx.Client]:
    """A cookie-keeping client holding a fresh admin session."""
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        answer = browser.get(login_link(hub))
        assert answer.status_code == 303, answer.text
        yield browser


def csrf_of(browser: httpx.Client) -> str:
    page = browser.get("/admin/")
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def htmx(csrf: str) -> dict[str, str]:
    """The headers htmx sends: HX-Request, and the CSRF token from `hx-headers` on <body>."""
    return {"HX-Request": "true", "X-CSRF-Token": csrf}
