"""The HubSpot SDK, built once per connection and token, and the mapping of its errors.

`hubspot-api-client` generates one package per API (`hubspot.crm.contacts`, `.companies`, `.deals`,
`.pipelines`, `.owners`, `.objects.notes`), each with its own ApiClient, Configuration and ApiException
class. We build each package's API objects once per connection and token (the `HubSpot(...).crm.contacts`
accessors build a new client on every access) and give all of them one urllib3 pool, so the connection
keeps one set of keep-alive sockets whichever tool runs. We ask for raw JSON (`_preload_content=False`)
instead of generated models the hub would throw away, and run the synchronous SDK in a worker thread so
the event loop never blocks. Nothing here is shared between two `HubSpotClient`s.
"""

import asyncio
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import orjson
import urllib3
from hubspot.crm import companies, contacts, deals, owners, pipelines
from hubspot.crm.objects import notes

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
_PACKAGES: tuple[ModuleType, ...] = (contacts, companies, deals, pipelines, owners, notes)
# Every package raises its own ApiException; they all carry `status`, `headers` and `body` alike.
_API_ERRORS: tuple[type[Exception], ...] = tuple(p.ApiException for p in _PACKAGES)


class HubSpotClient:
    """The SDK API objects the HubSpot tools call, for one connection and one access token."""

    def __init__(self, *, access_token: str, api_base: str, timeout: float) -> None:
        self._timeout = timeout
        clients = {p.__name__: _api_client(p, access_token, api_base) for p in _PACKAGES}
        # One pool for all packages: the same host, the same settings, thread-safe, one set of sockets.
        self._pool = clients[contacts.__name__].rest_client.pool_manager
        for client in clients.values():
            client.rest_client.pool_manager = self._pool
        self.api_clients: tuple[Any, ...] = tuple(clients.values())

        def of(package: ModuleType) -> Any:
            return clients[package.__name__]

        self.contacts = contacts.BasicApi(api_client=of(contacts))
        self.contacts_search = contacts.SearchApi(api_client=of(contacts))
        self.companies = companies.BasicApi(api_client=of(companies))
        self.companies_search = companies.SearchApi(api_client=of(companies))
        self.deals = deals.BasicApi(api_client=of(deals))
        self.deals_search = deals.SearchApi(api_client=of(deals))
        self.pipelines = pipelines.PipelinesApi(api_client=of(pipelines))
        self.owners = owners.OwnersApi(api_client=of(owners))
        self.notes = notes.BasicApi(api_client=of(notes))

    async def call(self, method: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run one SDK method in a worker thread and return the decoded JSON body."""
        return await asyncio.to_thread(self._call, method, kwargs)

    def _call(self, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        try:
            response = method(**kwargs, _preload_content=False, _request_timeout=self._timeout)
        except _API_ERRORS as exc:
            raise _translate(exc.status, exc.headers or {}, exc.body) from None  # type: ignore[attr-defined]
        except urllib3.exceptions.NewConnectionError:
            # Refused or unresolvable; urllib3 2 makes this a subclass of ConnectTimeoutError, so test it first.
            raise ProviderUnavailable("HubSpot could not be reached") from None
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise ProviderTimeout("HubSpot did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise ProviderUnavailable("HubSpot could not be reached") from None
        # With `_preload_content=False` the body is read here, so it can still time out or be cut off.
        try:
            body = response.data
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise ProviderTimeout("HubSpot did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise ProviderUnavailable("HubSpot's answer was cut off") from None
        finally:
            response.release_conn()
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProviderUnavailable("HubSpot answered with malformed JSON") from None

    def close(self) -> None:
        self._pool.clear()


def _api_client(package: ModuleType, access_token: str, api_base: str) -> Any:
    config = package.Configuration(host=api_base.rstrip("/"))
    config.access_token = access_token
    config.connection_pool_maxsize = _POOL_SIZE
    # Never let urllib3 silently retry: a retried write could run twice.
    config.retries = False
    return package.ApiClient(configuration=config)


def _decoded(body: Any) -> Mapping[str, Any]:
    try:
        decoded = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _message(body: Mapping[str, Any]) -> str:
    message = body.get("message", "")
    return message[:300] if isinstance(message, str) else ""


def _missing_scopes(body: Mapping[str, Any]) -> tuple[str, ...]:
    try:
        errors = body.get("errors") or []
        return tuple(s for e in errors for s in e.get("context", {}).get("requiredGranularScopes", []))
    except (AttributeError, TypeError):
        return ()


def _translate(status: int, headers: Any, raw_body: Any) -> ConnectorError:
    """One HubSpot error answer, from whichever SDK package raised it, as a connector error."""
    body = _decoded(raw_body)
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
        detail = _message(body)
        return ProviderRejected(f"HubSpot rejected the request: {detail}" if detail else "HubSpot rejected the request")
    if status == 0:
        return ProviderUnavailable("HubSpot could not be reached")
    return ProviderUnavailable(f"HubSpot answered {status}")
