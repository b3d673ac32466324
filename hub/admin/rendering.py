"""How admin pages are rendered and answered: templates, static assets, security headers, error pages.

Every route of the admin router goes through `PageRoute`, so each response gets the same headers and a
service error becomes an HTML message (or an htmx fragment), never a problem+json body or a 500.
"""

import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse, Response

from hub.errors import InvalidArguments, SwitchboardError, Unauthenticated
from hub.runtime import Hub

__all__ = [
    "STATIC",
    "Asset",
    "FormError",
    "PageRoute",
    "html",
    "is_htmx",
    "render",
]

_HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str


def _asset(name: str, media_type: str) -> Asset:
    body = (_HERE / "static" / name).read_bytes()
    return Asset(body, media_type, hashlib.sha256(body).hexdigest()[:12])


# A fixed allow-list read once: no path from the URL ever reaches the file system.
# htmx.min.js is htmx 2.0.11 (0BSD), vendored from the npm package `htmx.org`.
STATIC: dict[str, Asset] = {
    "htmx.min.js": _asset("htmx.min.js", "text/javascript"),
    "admin.js": _asset("admin.js", "text/javascript"),
    "admin.css": _asset("admin.css", "text/css"),
    "favicon.svg": _asset("favicon.svg", "image/svg+xml"),
}


@dataclass(frozen=True, slots=True)
class FormError:
    """A message shown beside the form it concerns (`form` is that form's id)."""

    form: str
    message: str
    field: str | None = None


def _when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(value: datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _ago(value: datetime | str | None) -> str:
    """How far from now, in words: "in 25 min", "3 h ago", "just now"; beside the absolute time, not for it."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    seconds = (moment - datetime.now(UTC)).total_seconds()
    span = abs(seconds)
    if span < 60:
        return "in under a minute" if seconds > 0 else "just now"
    if span < 120 * 60:
        text = f"{int(span // 60)} min"
    elif span < 48 * 3600:
        text = f"{int(span // 3600)} h"
    else:
        text = f"{int(span // 86400)} days"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _asset_url(name: str) -> str:
    # The content hash in the URL lets browsers cache assets for long without ever running stale code.
    return f"/admin/static/{name}?v={STATIC[name].version}"


def _pretty_json(value: Any, indent: int | None = None) -> str:
    # A plain str, not Markup: autoescaping still applies to whatever the constraints contain.
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)


_ENV = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(when=_when, iso=_iso, ago=_ago, pretty_json=_pretty_json)
# What the admin page calls each audit decision, wherever a call is shown or filtered.
DECISION_TEXT = {"allow": "Allowed", "deny": "Denied", "pending": "Held for approval"}
_ENV.globals.update(asset=_asset_url, now=lambda: datetime.now(UTC), decisions=DECISION_TEXT)


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def html(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status, headers=headers)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _security_headers(hub: Hub) -> dict[str, str]:
    # The connect form posts to /admin/connect, which redirects to the provider's consent page; CSP's
    # form-action also governs redirects after a submit, so the providers' authorize origins are allowed.
    origins = sorted(
        {
            f"{parts.scheme}://{parts.netloc}"
            for parts in (urlsplit(p.authorize_url) for p in hub.providers.values() if p.configured)
        }
    )
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "form-action " + " ".join(["'self'", *origins]),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Sign-in links carry their token in the URL: never hand it to another site as a referrer.
        "Referrer-Policy": "no-referrer",
    }


def _error_response(request: Request, exc: SwitchboardError) -> Response:
    if is_htmx(request):
        if isinstance(exc, Unauthenticated):
            # The session ended under an open page: reload it, which shows the sign-in help.
            return Response(status_code=401, headers={"HX-Refresh": "true"})
        return html(
            "_flash.html",
            exc.status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
            error=FormError("flash", exc.detail),
            notice=None,
        )
    if isinstance(exc, Unauthenticated):
        return html("signin.html", 401, csrf=None, problem=None, signed_out=False)
    return html("message.html", exc.status, csrf=None, title=exc.title, message=exc.detail)


class PageRoute(APIRoute):
    """An admin page route: security headers on every answer, errors as HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SwitchboardError as exc:
                response = _error_response(request, exc)
            except RequestValidationError:
                response = _error_response(request, InvalidArguments("a form field is missing, malformed or too long"))
            response.headers.update(_security_headers(request.app.state.hub))
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return page
