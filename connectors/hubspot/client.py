"""The HubSpot SDK, built once per connection and token, sending through one aiohttp pool; its errors mapped.

`hubspot-api-client` generates one package per API (`hubspot.crm.contacts`, `.companies`, `.deals`,
`.pipelines`, `.owners`, `.objects.notes`), each with its own ApiClient, Configuration and ApiException
class. We build each package's API objects once per connection and token (the `HubSpot(...).crm.contacts`
accessors build a new client on every access).

The SDK is synchronous: its generated methods build a request (path, query, headers, auth, JSON body) and
hand it to the package's `rest_client`, which sends it with urllib3. Running that in a worker thread, so that
the event loop never blocks, cost 0.3-0.4 ms of CPU per call: more than the rest of the hub's pipeline
together (`bench/sdk_share.py`). So each package's `rest_client` is swapped for `_Prepare`, which keeps the
request the SDK built instead of sending it, and the client sends it on the event loop through one
keep-alive aiohttp session: the SDK still decides every request's shape (in 9 µs), and the I/O is
asynchronous. Nothing here is shared between two `HubSpotClient`s.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from hubspot.crm import companies, contacts, deals, owners, pipelines
from hubspot.crm.objects import notes
from yarl import URL

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
from connectors.http import LazySession

__all__ = ["HubSpotClient"]

_POOL_SIZE = 32
_PACKAGES: tuple[ModuleType, ...] = (contacts, companies, deals, pipelines, owners, notes)
# aiohttp sends these once more when a kept-alive connection drops before the answer (RFC 9112 §9.3.1).
_RESENT_ON_DROP = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class _Request:
    """One request as the SDK built it: what its urllib3 client would have sent."""

    method: str
    url: str  # with the query string, percent-encoded
    headers: dict[str, str]
    body: bytes | None


@lru_cache(maxsize=256)
def _query_string(params: tuple[tuple[str, Any], ...]) -> str:
    # Most calls of a tool send the same query (the properties it reads); encoding it took 6 µs each time.
    return urlencode(params)


def _verb(method: str) -> Callable[..., _Request]:
    """`RESTClientObject.GET` and its siblings: the generated ApiClient calls one per HTTP method."""

    def prepare(self: "_Prepare", url: str, **kwargs: Any) -> _Request:
        return self.request(method, url, **kwargs)

    return prepare


class _Prepare:
    """Stands in for a package's `RESTClientObject`: the same methods, and the same encoding of query and
    JSON body, but it returns the request instead of sending it."""

    def request(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _preload_content: bool = True,
        _request_timeout: Any = None,
    ) -> _Request:
        headers = {"Content-Type": "application/json", **(headers or {})}
        if post_params or "json" not in headers["Content-Type"].lower():
            # No HubSpot tool posts forms or files; failing loudly beats sending something else.
            raise ValueError(f"the HubSpot connector sends JSON only, not {headers['Content-Type']}")
        if query_params:
            url += "?" + _query_string(tuple(query_params))
        data = orjson.dumps(body) if body is not None and method not in ("GET", "HEAD") else None
        return _Request(method, url, headers, data)

    GET = _verb("GET")
    HEAD = _verb("HEAD")
    OPTIONS = _verb("OPTIONS")
    POST = _verb("POST")
    PUT = _verb("PUT")
    PATCH = _verb("PATCH")
    DELETE = _verb("DELETE")


class HubSpotClient:
    """The SDK API objects the HubSpot tools call, for one connection and one access token."""

    def __init__(
        self,
        *,
        access_token: str,
        api_base: str,
        timeout: float,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        clients = {p.__name__: _api_client(p, access_token, api_base) for p in _PACKAGES}
        self.api_clients: tuple[Any, ...] = tuple(clients.values())
        # One pool for all packages: the same host, one set of keep-alive sockets.
        self._http = LazySession(timeout=timeout, pool_size=_POOL_SIZE, trace_configs=trace_configs)

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
        """Have the SDK build one request, send it, and return the decoded JSON body."""
        request: _Request = method(**kwargs, _preload_content=False)
        try:
            async with self._http.get().request(
                request.method, URL(request.url, encoded=True), headers=request.headers, data=request.body
            ) as response:
                status, headers, body = response.status, response.headers, await response.read()
        except TimeoutError:
            raise ProviderTimeout("HubSpot did not answer in time") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # Refused: never sent. Dropped: aiohttp has already sent an idempotent request a second time.
            sent_twice = request.method in _RESENT_ON_DROP and not isinstance(exc, aiohttp.ClientConnectorError)
            raise ProviderUnavailable("HubSpot could not be reached", retried=sent_twice) from None
        except (aiohttp.ClientError, OSError):
            raise ProviderUnavailable("HubSpot could not be reached") from None
        if not 200 <= status <= 299:
            raise _translate(status, headers, body)
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProviderUnavailable("HubSpot answered with malformed JSON") from None

    async def aclose(self) -> None:
        await self._http.aclose()

    def close(self) -> None:
        """Close the connection pool; callable from inside or outside the loop that opened it."""
        self._http.close()


def _api_client(package: ModuleType, access_token: str, api_base: str) -> Any:
    config = package.Configuration(host=api_base.rstrip("/"))
    config.access_token = access_token
    client = package.ApiClient(configuration=config)
    client.rest_client = _Prepare()
    return client


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
