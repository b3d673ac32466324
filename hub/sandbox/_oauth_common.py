"""The pieces every sandbox's OAuth server shares: the consent page's frame and form, redirect and client
checks, PKCE S256 and constant-time comparison.

Only the mechanics live here. What differs by provider (paths, scope syntax, code and token formats, error
shapes, rotation and expiry rules) stays in each provider's `_<provider>_oauth.py`.
"""

import base64
import hashlib
import hmac
import html
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = [
    "NO_STORE",
    "absolute_http_url",
    "basic_or_form_client",
    "consent_form",
    "consent_page",
    "s256",
    "same",
    "with_query",
]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1, on every token answer
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    # No `form-action`: browsers apply it to the redirect after the POST, which leaves for the client's host.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def consent_page(title: str, body: str, *, style: str, status_code: int = 200) -> HTMLResponse:
    """A provider-styled consent (or error) page; `body` is HTML the caller has escaped."""
    doc = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(doc, status_code, _PAGE_HEADERS)


def consent_form(request: Request, params: Mapping[str, str], approve: str) -> str:
    """The approve/deny form, posting the authorize parameters back as hidden fields."""
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
    # request.url.path already carries the mount prefix (root_path), so this works when mounted.
    return (
        f'<form method="post" action="{html.escape(request.url.path)}">{hidden}'
        f'<button type="submit" name="decision" value="approve">{approve}</button>'
        '<button type="submit" name="decision" value="deny">Cancel</button></form>'
    )


def absolute_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` added to its query; empty values are left out (no `state=` when none was sent)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def basic_or_form_client(request: Request, form: Mapping[str, str]) -> tuple[str, str]:
    """The client's id and secret from HTTP Basic, else from the form; ("", "") for unreadable Basic."""
    basic = request.headers.get("authorization", "")
    if basic[:6].lower() != "basic ":
        return form.get("client_id", ""), form.get("client_secret", "")
    try:
        pair = base64.b64decode(basic[6:].strip(), validate=True).decode()
    except ValueError:
        return "", ""
    client_id, _, client_secret = (unquote(p) for p in pair.partition(":"))
    return client_id, client_secret


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())  # bytes: compare_digest rejects non-ASCII str


def s256(verifier: str) -> str:
    """PKCE's S256 transform of a code verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
