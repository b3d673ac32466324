"""The HubSpot account's own settings the CRM API serves read-only: deal pipelines and owners (users).

Pure data, no HTTP; raises `CrmError` for what HubSpot refuses.
"""

import copy
from typing import Any

from hub.sandbox._hubspot_crm import CrmError
from hub.sandbox._hubspot_schema import OWNERS, PIPELINES

__all__ = ["MAX_OWNERS_PAGE", "owners_page", "pipelines"]

MAX_OWNERS_PAGE = 500


def pipelines(object_type: str) -> dict[str, Any]:
    """GET /crm/v3/pipelines/{objectType}: every pipeline with its stages (no paging, as in HubSpot)."""
    if object_type not in PIPELINES:
        raise CrmError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")
    return {"results": copy.deepcopy(PIPELINES[object_type])}


def owners_page(*, email: str | None, limit: int, after: str | None, archived: bool) -> dict[str, Any]:
    """GET /crm/v3/owners/: owners in id order; `after` is the id to resume from."""
    if not 1 <= limit <= MAX_OWNERS_PAGE:
        raise CrmError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_OWNERS_PAGE}")
    if after is not None and not after.isdigit():
        raise CrmError(400, "VALIDATION_ERROR", f"Invalid paging cursor: after={after!r}")
    wanted = [
        o
        for o in sorted(OWNERS, key=lambda o: int(o["id"]))
        if o["archived"] == archived
        and (email is None or o["email"].lower() == email.lower())
        and (after is None or int(o["id"]) >= int(after))
    ]
    body: dict[str, Any] = {"results": copy.deepcopy(wanted[:limit])}
    if len(wanted) > limit:
        body["paging"] = {"next": {"after": wanted[limit]["id"]}}
    return body
