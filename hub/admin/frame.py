"""What a full admin page needs besides its own content: the signed-in session's CSRF token (for its forms
and htmx's header) and the count of calls waiting for approval (the navigation's badge).

For pages that are not the dashboard (hub.admin.activity_pages, hub.admin.usage_pages): the dashboard loads
the same two things as part of its `Dashboard`.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from hub import approvals
from hub.admin.rendering import is_htmx
from hub.admin_auth import csrf_token
from hub.runtime import Hub

__all__ = ["Nav", "frame", "wants_fragment"]


@dataclass(frozen=True, slots=True)
class Nav:
    """What base.html's navigation reads (as `data`, like the dashboard's)."""

    pending_count: int


async def frame(hub: Hub, session_token: str, *, here: str) -> dict[str, Any]:
    """The template context every full page starts from; `here` marks the current nav link."""
    return {
        "csrf": csrf_token(hub.secret_key, session_token),
        "data": Nav(await hub.db.run(approvals.pending_count)),
        "here": here,
        "oob": False,  # base.html's badge is swapped out of band only in dashboard fragments
    }


def wants_fragment(request: Request) -> bool:
    """htmx asking for a part of the page; not when it restores a page from history (it needs all of it)."""
    return is_htmx(request) and request.headers.get("hx-history-restore-request") != "true"
