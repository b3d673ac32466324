"""The HubSpot SDK, built once per connection and token, and the mapping of its errors.

Each `hubspot.crm.<object>` package has its own ApiClient with a urllib3 pool; we build each API object
once and reuse it (the `HubSpot(...).crm.contacts.basic_api` accessor builds a new client on every access),
ask for raw JSON (`_preload_content=False`) instead of generated models the hub would throw away, and run
the synchronous SDK in a worker thread so the event loop never blocks.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import urllib3
from hubspot.crm import contacts

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

__all__ = ["HubSpotClient"]

_POOL_SIZE = 32


class HubSpotClient:
    def __init__(self, *, access_token: str, api_base: str, timeout: float) -> None:
        config = contacts.Configuration(host=api_base.rstrip("/"))
        config.access_token = access_token
        config.connection_pool_maxsize = _POOL_SIZE
        # Never let urllib3 silently retry: a retried write could run twice.
        config.retries = False
        self._api_client = contacts.ApiClient(configuration=config)
        self.contacts = contacts.BasicApi(api_client=self._api_client)
        self.contacts_search = contacts.SearchApi(api_client=self._api_client)
        self._timeout = timeout

    async def call(self, method: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run one SDK method in a worker thread and return the decoded JSON body."""
        return await asyncio.to_thread(self._call, method, kwargs)

    def _call(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        try:
            response = method(**kwargs, _preload_content=False, _request_timeout=self._timeout)
        except contacts.ApiException as exc:
            raise _translate(exc.status, exc.headers or {}, exc.body) from None
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise ProviderTimeout("HubSpot did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise ProviderUnavailable("HubSpot could not be reached") from None
        try:
            body = response.data
        finally:
            response.release_conn()
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProviderUnavailable("HubSpot answered with malformed JSON") from None

    def close(self) -> None:
        self._api_client.rest_client.pool_manager.clear()


def _message(body: Any) -> str:
    try:
        decoded = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return ""
    message = decoded.get("message", "") if isinstance(decoded, dict) else ""
    return message[:300] if isinstance(message, str) else ""


def _missing_scopes(body: Any) -> tuple[str, ...]:
    try:
        decoded = orjson.loads(body)
        errors = decoded.get("errors") or []
        return tuple(s for e in errors for s in e.get("context", {}).get("requiredGranularScopes", []))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ()


def _translate(status: int, headers: Any, body: Any) -> ConnectorError:
    detail = _message(body)
    if status == 401:
        return ProviderAuthExpired("HubSpot refused the access token")
    if status == 403:
        missing = _missing_scopes(body)
        named = f": needs {', '.join(missing)}" if missing else ""
        return ProviderForbidden(f"HubSpot refused the call{named}", missing)
    if status == 404:
        return ProviderNotFound("HubSpot has no such object")
    if status == 429:
        retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return ProviderRateLimited("HubSpot rate limit reached", seconds)
    if status in (400, 409, 422):
        return ProviderRejected(
            f"HubSpot rejected the request: {detail}" if detail else "HubSpot rejected the request"
        )
    if status == 0:
        return ProviderUnavailable("HubSpot could not be reached")
    return ProviderUnavailable(f"HubSpot answered {status}")
