"""A small, stateful, in-memory HubSpot: OAuth 2.0, the CRM v3 objects API for contacts, companies, deals and
notes (with associations), deal pipelines and owners.

The hub mounts `HubSpotSandbox(...).app` at `/sandbox/hubspot` in demo mode; tests serve it alone. It is also
the "fast local upstream" of the benchmarks, so requests take plain Starlette routes, orjson and one lock.

Test hooks live under `/_control/`: `POST expire-tokens`, `GET stats`, `POST reset-stats`, `POST revoke-all`,
`POST throttle` (`{"count": N, "retry_after": S | null}`: the next N API calls get HubSpot's 429) and
`POST fault` (slow answers, 5xx, resets, malformed JSON: see `hub.sandbox._control`).
"""

import threading
import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response
from hub.sandbox._control import Controls, Throttle, throttle_from
from hub.sandbox._hubspot_account import owners_page, pipelines
from hub.sandbox._hubspot_crm import OBJECT_TYPES, CrmError, CrmStore
from hub.sandbox._hubspot_oauth import OAuthServer

__all__ = ["HubSpotSandbox", "SandboxStats"]

_AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)


def _error(exc: CrmError) -> Response:
    body = {
        "status": "error",
        "message": exc.message,
        "correlationId": str(uuid.uuid4()),
        **exc.extra,
        "category": exc.category,
    }
    return json_response(body, exc.status_code)


async def _crm_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CrmError)
    return _error(exc)


def _listed(request: Request, name: str) -> list[str]:
    # The SDK repeats the parameter (`properties=a&properties=b`); curl users write `properties=a,b`.
    return [p for raw in request.query_params.getlist(name) for p in raw.split(",") if p]


def _properties(request: Request) -> list[str]:
    return _listed(request, "properties")


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit", str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise CrmError(400, "VALIDATION_ERROR", f"limit must be a positive integer, got {raw!r}")
    return int(raw)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


async def _json_body(request: Request) -> Any:
    return _json(await request.body())


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CrmError(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from None


def _read_throttle(raw: bytes) -> Throttle:
    body = _json(raw) if raw else {}
    if not isinstance(body, dict):
        raise CrmError(400, "VALIDATION_ERROR", "expected a JSON object")
    throttle = throttle_from(body)
    if throttle is None:
        raise CrmError(400, "VALIDATION_ERROR", "count and retry_after must be integers")
    return throttle


def _failed(status: int, message: str) -> Response:
    return _error(CrmError(status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR", message))


def _throttled(throttle: Throttle) -> Response:
    # Real HubSpot sends no Retry-After, only its rate-limit headers; the control endpoint may add one.
    headers = {
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
    }
    if throttle.retry_after is not None:
        headers["Retry-After"] = str(throttle.retry_after)
    body = {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": "SECONDLY",
    }
    return json_response(body, 429, headers)


class HubSpotSandbox:
    """One HubSpot portal with one registered app (`client_id`/`client_secret`)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int = 1800,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self.stats = SandboxStats()
        self._oauth = OAuthServer(
            client_id=client_id,
            client_secret=client_secret,
            access_token_ttl=access_token_ttl,
            rotate_refresh_tokens=rotate_refresh_tokens,
            lock=self._lock,
            stats=self.stats,
        )
        self._store = CrmStore()
        self._controls = Controls(
            lock=self._lock,
            stats=self.stats,
            tokens=self._oauth,
            is_api=lambda path: path.startswith("/crm/"),
            read_throttle=_read_throttle,
            throttled=_throttled,
            error=_failed,
        )
        objects = "/crm/v3/objects/{object_type}"
        self.app = Starlette(
            routes=[
                *self._oauth.routes(),
                Route("/crm/v3/pipelines/{object_type}", self._pipelines, methods=["GET"]),
                # The SDK calls `/crm/v3/owners/`; HubSpot answers both spellings.
                Route("/crm/v3/owners/", self._owners, methods=["GET"]),
                Route("/crm/v3/owners", self._owners, methods=["GET"]),
                Route(objects, self._list, methods=["GET"]),
                Route(objects, self._create, methods=["POST"]),
                Route(objects + "/search", self._search, methods=["POST"]),
                Route(objects + "/{object_id}", self._read, methods=["GET"]),
                Route(objects + "/{object_id}", self._update, methods=["PATCH"]),
                Route(objects + "/{object_id}", self._archive, methods=["DELETE"]),
                *self._controls.routes(),
            ],
            middleware=[self._controls.middleware()],
            exception_handlers={CrmError: _crm_error_handler},
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 401 EXPIRED_AUTHENTICATION."""
        self._oauth.expire_access_tokens()

    # -- per request -------------------------------------------------------------------------------------

    def _guard(self, request: Request, *, write: bool) -> str:
        """Authenticate, then check the object type and the scope; HubSpot answers 401 before 403."""
        scopes = self._authenticate(request)
        object_type: str = request.path_params["object_type"]
        if object_type not in OBJECT_TYPES:
            raise CrmError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")
        # HubSpot has no notes scope: its notes (and other activities) API takes the contacts scopes.
        governed_by = "contacts" if object_type == "notes" else object_type
        self._require(scopes, f"crm.objects.{governed_by}.{'write' if write else 'read'}")
        return object_type

    def _authenticate(self, request: Request) -> frozenset[str]:
        scopes = self._oauth.authenticate(request.headers.get("authorization"))
        if scopes == "missing":
            raise CrmError(401, "INVALID_AUTHENTICATION", _AUTH_MESSAGE)
        if scopes == "expired":
            raise CrmError(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
        return scopes

    @staticmethod
    def _require(scopes: frozenset[str], needed: str) -> None:
        if needed not in scopes:
            raise CrmError(
                403,
                "MISSING_SCOPES",
                _SCOPES_MESSAGE,
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [needed]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )

    # -- CRM v3 objects ------------------------------------------------------------------------------------

    async def _list(self, request: Request) -> Response:
        object_type = self._guard(request, write=False)
        limit = _limit(request, 10)
        after = request.query_params.get("after")
        with self._lock:
            page = self._store.page(
                object_type,
                limit=min(limit, 100),
                after=after,
                properties=_properties(request),
                archived=_flag(request, "archived"),
                associations=_listed(request, "associations"),
            )
        if "paging" in page:
            page["paging"]["next"]["link"] = str(
                request.url.include_query_params(after=page["paging"]["next"]["after"])
            )
        return json_response(page)

    async def _create(self, request: Request) -> Response:
        object_type = self._guard(request, write=True)
        body = await _json_body(request)
        with self._lock:
            return json_response(self._store.create(object_type, body), 201)

    async def _search(self, request: Request) -> Response:
        object_type = self._guard(request, write=False)  # a POST, but a read as far as scopes go
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise CrmError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        with self._lock:
            return json_response(self._store.search(object_type, body))

    async def _read(self, request: Request) -> Response:
        object_type = self._guard(request, write=False)
        with self._lock:
            found = self._store.get(
                object_type,
                request.path_params["object_id"],
                properties=_properties(request),
                archived=_flag(request, "archived"),
                id_property=request.query_params.get("idProperty"),
                associations=_listed(request, "associations"),
            )
        return json_response(found)

    async def _update(self, request: Request) -> Response:
        object_type = self._guard(request, write=True)
        body = await _json_body(request)
        with self._lock:
            updated = self._store.update(
                object_type,
                request.path_params["object_id"],
                body,
                id_property=request.query_params.get("idProperty"),
            )
        return json_response(updated)

    async def _archive(self, request: Request) -> Response:
        object_type = self._guard(request, write=True)
        with self._lock:
            self._store.archive(object_type, request.path_params["object_id"])
        return Response(status_code=204)

    # -- account settings: pipelines and owners --------------------------------------------------------------

    async def _pipelines(self, request: Request) -> Response:
        scopes = self._authenticate(request)
        object_type: str = request.path_params["object_type"]
        if object_type == "deals":  # each object's pipelines take that object's scope
            self._require(scopes, "crm.objects.deals.read")
        return json_response(pipelines(object_type))

    async def _owners(self, request: Request) -> Response:
        self._require(self._authenticate(request), "crm.objects.owners.read")
        page = owners_page(
            email=request.query_params.get("email"),
            limit=_limit(request, 100),
            after=request.query_params.get("after"),
            archived=_flag(request, "archived"),
        )
        if "paging" in page:
            page["paging"]["next"]["link"] = str(
                request.url.include_query_params(after=page["paging"]["next"]["after"])
            )
        return json_response(page)
