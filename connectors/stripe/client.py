"""stripe-python, built once per connection and token, with the retry rules a hub needs and its errors mapped.

One `stripe.StripeClient` per connection and token (never the global `stripe.api_key`, which two
connections would fight over), pinned to the API version the tools were written against, on one pooled
`requests` session. The synchronous SDK runs in a worker thread so the event loop never blocks; tools get
the decoded JSON body (`last_response.data`), not the SDK's object tree.

Retries, on top of what stripe-python does itself (up to `max_network_retries` for connection errors,
409, 5xx and whatever `Stripe-Should-Retry` says; never 429):
- every POST carries an `Idempotency-Key` (the tool's own or one per call), sent unchanged on each retry,
  so Stripe runs a retried write once;
- a 429 on a POST is retried here when Stripe asks for a wait of at most `_RATE_LIMIT_WAIT` seconds (or
  names none), since the hub never retries writes; a 429 on a GET is left to the hub, which retries reads
  within its own budget honouring Retry-After;
- a read time-out is not retried: a second wait would outlast the call's deadline.
"""

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
import stripe
from requests.adapters import HTTPAdapter

from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from connectors.stripe.manifest import API_VERSION

__all__ = ["StripeClient", "translate"]

_POOL_SIZE = 32
_MAX_RETRIES = 2
_RATE_LIMIT_WAIT = 2.0
_KEY = re.compile(r"\b(sk|rk|pk|rt|ac)_(test|live)_[A-Za-z0-9*]+")
# "... Having the 'rak_refund_write' permission would allow ..." (restricted keys) or
# "... The 'read_write' scope would allow ..." (Connect tokens).
_MISSING = re.compile(r"'([a-z_]+)' (?:permission|scope)")

# stripe-python logs request and response bodies (names, emails, amounts) at DEBUG on the "stripe" logger;
# a hub running at DEBUG must not copy customers' personal data into its log.
logging.getLogger("stripe").setLevel(logging.INFO)


class _HttpClient(stripe.RequestsClient):
    """stripe-python's `requests` transport on one pooled session, with the retry rules above."""

    def __init__(self, *, timeout: float) -> None:
        self._pool = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=_POOL_SIZE, max_retries=0)
        self._pool.mount("http://", adapter)
        self._pool.mount("https://", adapter)
        super().__init__(timeout=timeout, session=self._pool)
        self._attempt = threading.local()  # per worker thread: this request's method and the wait asked for

    def request_with_retries(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._attempt.method = method.lower()
        self._attempt.wait = None
        return super().request_with_retries(method, *args, **kwargs)

    def _should_retry(
        self,
        response: tuple[Any, int, Mapping[str, str] | None] | None,
        api_connection_error: stripe.APIConnectionError | None,
        num_retries: int,
        max_network_retries: int | None,
    ) -> bool:
        self._attempt.wait = None
        if api_connection_error is not None and isinstance(api_connection_error.__cause__, requests.Timeout):
            return False
        if response is not None and response[1] == 429:
            if num_retries >= (max_network_retries or 0) or getattr(self._attempt, "method", "") != "post":
                return False
            wait = _retry_after(response[2])
            if wait is not None and wait > _RATE_LIMIT_WAIT:
                return False
            self._attempt.wait = wait
            return True
        return bool(super()._should_retry(response, api_connection_error, num_retries, max_network_retries))

    def _sleep_time_seconds(self, num_retries: int) -> float:
        wait = getattr(self._attempt, "wait", None)
        return float(wait) if wait is not None else float(super()._sleep_time_seconds(num_retries))

    def close(self) -> None:
        self._pool.close()


class StripeClient:
    """The Stripe SDK for one connection and one access token (a Connect token or an API key)."""

    def __init__(self, *, access_token: str, api_base: str, timeout: float) -> None:
        self.http = _HttpClient(timeout=timeout)
        self.sdk = stripe.StripeClient(
            access_token,
            stripe_version=API_VERSION,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=_MAX_RETRIES,
            http_client=self.http,
        )
        self.v1 = self.sdk.v1

    async def call(self, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one SDK method in a worker thread; returns Stripe's JSON answer as a dict."""
        return await asyncio.to_thread(self._call, method, args, kwargs)

    @staticmethod
    def _call(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            result = method(*args, **kwargs)
        except stripe.StripeError as exc:
            raise translate(exc) from None
        response = getattr(result, "last_response", None)
        data = getattr(response, "data", None)
        if not isinstance(data, Mapping):
            raise ProviderUnavailable("Stripe answered without a JSON object")
        return dict(data)

    def close(self) -> None:
        self.http.close()


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _safe(message: str) -> str:
    """Stripe's own message, minus anything key-shaped, capped."""
    return _KEY.sub(lambda m: f"{m[1]}_{m[2]}_***", message.strip())[:300]


def _message(exc: stripe.StripeError) -> str:
    """Stripe's own error message when the answer was a Stripe error object, never a raw body."""
    body = exc.json_body if isinstance(exc.json_body, Mapping) else {}
    error = body.get("error")
    message = error.get("message") if isinstance(error, Mapping) else None
    return _safe(message) if isinstance(message, str) else ""


def _not_found(exc: stripe.StripeError) -> bool:
    code = getattr(exc, "code", None)
    return exc.http_status == 404 or code == "resource_missing"


def translate(exc: stripe.StripeError) -> ConnectorError:
    """The connector error for one stripe-python exception; messages never carry a key or token."""
    status = exc.http_status
    message = _message(exc)
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        headers = exc.headers if isinstance(exc.headers, Mapping) else None
        return ProviderRateLimited("Stripe rate limit reached", _retry_after(headers))
    if isinstance(exc, stripe.AuthenticationError) or status == 401:
        return ProviderAuthExpired("Stripe refused the API key or access token")
    if isinstance(exc, stripe.PermissionError) or status == 403:
        missing = tuple(dict.fromkeys(_MISSING.findall(message)))
        named = f": needs {', '.join(missing)}" if missing else ""
        return ProviderForbidden(f"Stripe refused the call{named}", missing)
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, requests.Timeout):
            return ProviderTimeout("Stripe did not answer in time")
        return ProviderUnavailable("Stripe could not be reached", retried=True)
    if isinstance(exc, stripe.InvalidRequestError) and _not_found(exc):
        return ProviderNotFound(message or "Stripe has no such object")
    if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError)) or status in (
        400,
        402,
        404,
        409,
        422,  # prism, serving Stripe's spec, answers a non-conforming request with 422
    ):
        return ProviderRejected(f"Stripe rejected the request: {message}" if message else "Stripe rejected the request")
    if status is not None and 200 <= status < 300:  # stripe-python could not decode the answer's body
        return ProviderUnavailable("Stripe answered with malformed JSON")
    # stripe-python has retried a 5xx itself (see _HttpClient).
    return ProviderUnavailable(f"Stripe answered {status}" if status else "Stripe failed", retried=True)
