"""A small, stateful, in-memory Stripe: Connect OAuth plus the v1 API the Stripe connector calls.

The hub mounts `StripeSandbox(...).app` at `/sandbox/stripe` in demo mode, where both of Stripe's hosts
(connect.stripe.com for OAuth, api.stripe.com for the API) map onto this one app; tests serve it alone.
Requests are form-encoded with bracket notation like Stripe's; answers carry Stripe's shapes, errors
(`{"error": {...}}` with `type`, `code`, `param`), `Request-Id` and the `Stripe-Version` asked for. A POST
with an `Idempotency-Key` runs once: the same key and parameters replay the first answer
(`Idempotent-Replayed: true`); the same key with other parameters is Stripe's idempotency error.

Test hooks live under `/_control/`: `POST expire-tokens`, `GET stats`, `POST reset-stats`,
`GET issued-tokens`, `POST revoke-all`, `POST throttle` (`{"count": N, "retry_after": S | null}`: the next N
API calls get Stripe's 429), `POST fault` (slow answers, 5xx, resets, malformed JSON: see
`hub.sandbox._control`; `POST fail` `{"count": N, "status": 500}` is its older spelling for a 5xx),
`POST api-keys` (`{"permissions": ["rak_charge_read", …]}` mints a restricted key; `{}` a secret key) and
`GET outbox` (the invoice emails "sent").
"""

import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response, route_path
from hub.sandbox._control import Controls, Fault, Throttle, decode_object, throttle_from
from hub.sandbox._stripe_billing import Billing
from hub.sandbox._stripe_oauth import ConnectOAuth, Principal, mask
from hub.sandbox._stripe_params import Params, StripeApiError, decode
from hub.sandbox._stripe_store import StripeStore

__all__ = ["API_VERSION", "StripeSandbox"]

API_VERSION = "2023-08-16"
_IDEMPOTENCY_MEMORY = 10_000  # answers kept for replay; oldest forgotten first (Stripe keeps 24 hours)
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
    "for details, or we can help at https://support.stripe.com/."
)
Action = Callable[..., dict[str, Any]]


def _request_id() -> str:
    return "req_" + secrets.token_hex(7)


def _error_response(exc: StripeApiError, version: str | None = None) -> Response:
    headers = {"Request-Id": _request_id(), "Stripe-Version": version or API_VERSION, **exc.headers}
    return json_response(exc.body(), exc.status_code, headers)


async def _stripe_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StripeApiError)
    return _error_response(exc, request.headers.get("stripe-version"))


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        message = (
            f"Unrecognized request URL ({request.method}: {route_path(request.scope)}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return _error_response(StripeApiError(404, message))
    return Response(str(exc.detail), exc.status_code)


def _read_throttle(raw: bytes) -> Throttle:
    throttle = throttle_from(_control_object(raw))
    if throttle is None:
        raise StripeApiError(400, "count and retry_after must be integers")
    return throttle


def _throttled(throttle: Throttle) -> Response:
    message = "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
    headers = {} if throttle.retry_after is None else {"Retry-After": str(throttle.retry_after)}
    return _error_response(StripeApiError(429, message, code="rate_limit", headers=headers))


def _failed(status: int, message: str) -> Response:
    if status >= 500:
        message = "An unknown error occurred while processing your request; try again shortly."
        return _error_response(StripeApiError(status, message, type="api_error"))
    return _error_response(StripeApiError(status, message))


class StripeSandbox:
    """One Stripe test-mode account with one Connect platform (`client_id`, secret key `client_secret`)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int = 0,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        """`access_token_ttl` 0: Connect tokens never expire, as at Stripe (where they end when revoked)."""
        self._lock = threading.Lock()
        self.stats = SandboxStats()
        self.store = StripeStore()
        self.billing = Billing(self.store)
        self._oauth = ConnectOAuth(
            client_id=client_id,
            client_secret=client_secret,
            account=self.store.account,
            access_token_ttl=access_token_ttl,
            rotate_refresh_tokens=rotate_refresh_tokens,
            lock=self._lock,
            stats=self.stats,
        )
        self._replies: dict[str, tuple[tuple[Any, ...], int, bytes, str]] = {}
        self._controls = Controls(
            lock=self._lock,
            stats=self.stats,
            tokens=self._oauth,
            is_api=lambda path: path.startswith("/v1/"),
            read_throttle=_read_throttle,
            throttled=_throttled,
            error=_failed,
            log_control_requests=True,  # Stripe's stats have always listed the control calls too
        )
        store, billing = self.store, self.billing
        api = self._api
        self.app = Starlette(
            routes=[
                *self._oauth.routes(),
                api("GET", "/v1/customers/search", "customer", store.search_customers, ("query", "limit", "page")),
                api("GET", "/v1/customers", "customer", self._list(lambda: store.customers, "customer"), _LIST),
                api("POST", "/v1/customers", "customer", store.create_customer, _CUSTOMER_FIELDS, write=True),
                api("GET", "/v1/customers/{id}", "customer", self._read(lambda: store.customers, "customer"), ()),
                api("GET", "/v1/payment_intents", "payment_intent", self._intents, (*_LIST, "customer")),
                api(
                    "GET",
                    "/v1/payment_intents/{id}",
                    "payment_intent",
                    self._read(lambda: store.payment_intents, "payment_intent"),
                    (),
                ),
                api("GET", "/v1/charges", "charge", self._charges, (*_LIST, "customer", "payment_intent")),
                api("GET", "/v1/charges/{id}", "charge", self._read(lambda: store.charges, "charge"), ()),
                api("POST", "/v1/refunds", "refund", store.refund, _REFUND_FIELDS, write=True),
                api("GET", "/v1/refunds/{id}", "refund", self._read(lambda: store.refunds, "refund"), ()),
                api("GET", "/v1/balance", "balance", lambda p: store.balance(), ()),
                api("GET", "/v1/prices", "price", self._list(lambda: store.prices, "price"), _LIST),
                api("GET", "/v1/invoices", "invoice", billing.list, (*_LIST, "customer", "status")),
                api("POST", "/v1/invoices", "invoice", billing.create, _INVOICE_FIELDS, write=True),
                api("GET", "/v1/invoices/{id}", "invoice", lambda p, id: billing.get(id), ()),
                api(
                    "POST",
                    "/v1/invoices/{id}/finalize",
                    "invoice",
                    lambda p, id: billing.finalize(id, p),
                    ("auto_advance",),
                    write=True,
                ),
                api("POST", "/v1/invoices/{id}/send", "invoice", lambda p, id: billing.send(id), (), write=True),
                api("POST", "/v1/invoiceitems", "invoice", billing.create_item, _ITEM_FIELDS, write=True),
                api("POST", "/v1/payment_links", "payment_link", store.create_payment_link, _LINK_FIELDS, write=True),
                *self._controls.routes(),
                Route("/_control/fail", self._control_fail, methods=["POST"]),
                Route("/_control/api-keys", self._control_api_key, methods=["POST"]),
                Route("/_control/outbox", self._control_outbox, methods=["GET"]),
            ],
            middleware=[self._controls.middleware()],
            exception_handlers={StripeApiError: _stripe_error_handler, HTTPException: _http_error_handler},
        )

    def expire_access_tokens(self) -> None:
        """Every Connect access token issued so far now answers 401."""
        self._oauth.expire_access_tokens()

    # -- per request -------------------------------------------------------------------------------------

    def _guard(self, request: Request, resource: str, *, write: bool) -> Principal:
        """Authenticate, then check the key's scope or permissions: 401 before 403, like Stripe."""
        found = self._oauth.authenticate(request.headers.get("authorization"))
        if found == "missing":
            raise StripeApiError(401, _NO_KEY, headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        if found == "invalid":
            raise StripeApiError(401, "Invalid API Key provided: " + mask(_credential(request)))
        if found == "expired":
            message = f"Expired API Key provided: {mask(_credential(request))}. Platform access may have been revoked."
            raise StripeApiError(401, message, code="api_key_expired")
        missing = found.missing(resource, write=write)
        if missing is None:
            return found
        where = f"for this endpoint on account '{self.store.account}'"
        if found.kind == "oauth":
            who, grant = "This application does", f"The '{missing}' scope"
        else:
            who, grant = f"The provided key '{mask(found.key)}' does", f"Having the '{missing}' permission"
        message = f"{who} not have the required permissions {where}. {grant} would allow this request to continue."
        raise StripeApiError(403, message)

    def _api(
        self, method: str, path: str, resource: str, action: Action, allowed: tuple[str, ...], *, write: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            self._guard(request, resource, write=write)
            raw = (await request.body()).decode("utf-8", "replace") if method == "POST" else request.url.query
            pairs = parse_qsl(raw, keep_blank_values=True)
            version = request.headers.get("stripe-version") or API_VERSION
            key = request.headers.get("idempotency-key") if method == "POST" else None
            if key is not None and not 1 <= len(key) <= 255:
                raise StripeApiError(400, "Idempotency-Key must be 1 to 255 characters.", type="idempotency_error")
            fingerprint = (method, request.url.path, tuple(sorted(pairs)))
            with self._lock:
                if key is not None and key in self._replies:
                    return self._replay(key, fingerprint, version)
                request_id = _request_id()
                try:
                    params = Params(decode(pairs), allowed)
                    status, body, keep = 200, orjson.dumps(action(params, **request.path_params)), True
                except StripeApiError as exc:
                    status, body, keep = exc.status_code, orjson.dumps(exc.body()), exc.replayable
                if key is not None and keep:
                    self._remember(key, (fingerprint, status, body, request_id))
            headers = {"Request-Id": request_id, "Stripe-Version": version}
            if key is not None:
                headers["Idempotency-Key"] = key
            return Response(body, status, headers, media_type="application/json")

        return Route(path, endpoint, methods=[method])

    def _replay(self, key: str, fingerprint: tuple[Any, ...], version: str) -> Response:
        first, status, body, request_id = self._replies[key]
        if first != fingerprint:
            raise StripeApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        headers = {
            "Request-Id": _request_id(),
            "Original-Request": request_id,
            "Idempotency-Key": key,
            "Idempotent-Replayed": "true",
            "Stripe-Version": version,
        }
        return Response(body, status, headers, media_type="application/json")

    def _remember(self, key: str, reply: tuple[tuple[Any, ...], int, bytes, str]) -> None:
        if len(self._replies) >= _IDEMPOTENCY_MEMORY:
            for old in list(self._replies)[: _IDEMPOTENCY_MEMORY // 2]:
                del self._replies[old]
        self._replies[key] = reply

    # -- list and read endpoints -----------------------------------------------------------------------------

    def _list(self, table: Callable[[], dict[str, dict[str, Any]]], kind: str) -> Action:
        def action(params: Params) -> dict[str, Any]:
            return self.store.page(table().values(), params, kind=kind, url=f"/v1/{kind}s")

        return action

    def _read(self, table: Callable[[], dict[str, dict[str, Any]]], kind: str) -> Action:
        def action(params: Params, id: str) -> dict[str, Any]:
            return self.store.get(table(), kind, id)

        return action

    def _intents(self, params: Params) -> dict[str, Any]:
        customer = params.string("customer")
        chosen = [p for p in self.store.payment_intents.values() if customer is None or p["customer"] == customer]
        return self.store.page(chosen, params, kind="payment_intent", url="/v1/payment_intents")

    def _charges(self, params: Params) -> dict[str, Any]:
        customer, intent = params.string("customer"), params.string("payment_intent")
        chosen = [
            c
            for c in self.store.charges.values()
            if (customer is None or c["customer"] == customer) and (intent is None or c["payment_intent"] == intent)
        ]
        return self.store.page(chosen, params, kind="charge", url="/v1/charges")

    # -- test hooks ----------------------------------------------------------------------------------------

    async def _control_fail(self, request: Request) -> Response:
        """The older spelling of `POST fault` with `kind` "status"."""
        body = await _control_body(request)
        count, status = body.get("count", 1), body.get("status", 500)
        if not isinstance(count, int) or not isinstance(status, int) or not 500 <= status <= 599:
            raise StripeApiError(400, "count must be an integer and status a 5xx code")
        self._controls.inject(Fault("status", count, status))
        return Response(status_code=204)

    async def _control_api_key(self, request: Request) -> Response:
        body = await _control_body(request)
        permissions = body.get("permissions")
        if permissions is not None and not (
            isinstance(permissions, list) and all(isinstance(p, str) and p.startswith("rak_") for p in permissions)
        ):
            raise StripeApiError(400, "permissions must be a list of rak_<resource>_<read|write> names")
        return json_response({"key": self._oauth.mint_key(permissions)}, 201)

    async def _control_outbox(self, request: Request) -> Response:
        with self._lock:
            return json_response({"invoices": [{"invoice": i, "to": to} for i, to in self.billing.outbox]})


async def _control_body(request: Request) -> dict[str, Any]:
    return _control_object(await request.body())


def _control_object(raw: bytes) -> dict[str, Any]:
    body = decode_object(raw)
    if body is None:
        raise StripeApiError(400, "expected a JSON object")
    return body


def _credential(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


_LIST = ("limit", "starting_after", "ending_before")
_CUSTOMER_FIELDS = ("email", "name", "phone", "description", "metadata")
_REFUND_FIELDS = ("charge", "payment_intent", "amount", "reason", "metadata")
_INVOICE_FIELDS = (
    "customer",
    "collection_method",
    "days_until_due",
    "due_date",
    "auto_advance",
    "currency",
    "description",
    "footer",
    "metadata",
    "pending_invoice_items_behavior",
)
_ITEM_FIELDS = (
    "customer",
    "invoice",
    "amount",
    "unit_amount",
    "quantity",
    "currency",
    "description",
    "price",
    "metadata",
)
_LINK_FIELDS = ("line_items", "metadata")
