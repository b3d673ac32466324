"""The Google API client (google-api-python-client): the service built once per API and base URL, tokens
kept per connection, and one httplib2 connection per worker thread.

The service is built from the SDK's packaged discovery document (what `build(..., static_discovery=True)`
reads), with `rootUrl` rewritten to the configured API base and `client_options.api_endpoint` set: the
endpoint moves the JSON API calls, but media uploads take their URL from `rootUrl`, so without the rewrite
an upload would leave for https://www.googleapis.com whatever the base. Building is expensive (about 20 ms
for Drive: each `service.files()` call alone builds every method of the collection anew, about 3 ms, while
a call on a kept collection costs about 20 µs), and the built service holds no credentials, so it is built
once per process and base URL and shared by every connection; collections are kept the same way.

httplib2, under the SDK, is not thread-safe, and calls run in worker threads (`asyncio.to_thread`). So the
token lives in each client's own authorised `Http` per worker thread (a `google_auth_httplib2.AuthorizedHttp`
with `google.oauth2.credentials.Credentials(token=...)`, kept in a `threading.local`), passed to
`request.execute(http=...)`: requests never share a connection, and each thread keeps its keep-alive
connection (and TLS session) from one call to the next, which a fresh `Http` per call would throw away. The
worker pool is bounded, so so is the number of `Http` objects. The shared service's own `http` refuses to
send anything, so a request executed without a client's `Http` fails instead of going out unauthenticated.

No automatic retries: `num_retries=0`, and the `AuthorizedHttp` does not try to refresh on 401 (the hub
owns refresh: a 401 becomes ProviderAuthExpired, the hub refreshes once and retries). httplib2 itself only
re-sends a request when a kept-alive connection turns out to be closed before any answer arrived.
"""

import asyncio
import http.client
import select
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import google_auth_httplib2
import httplib2
import orjson
from google.oauth2.credentials import Credentials
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from connectors.errors import ProviderTimeout, ProviderUnavailable
from connectors.google_common.errors import translate_http_error

__all__ = ["GoogleClient"]


class _NoHttp:
    """The shared service's own transport: requests must go through a client's per-thread Http."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("execute Google requests through GoogleClient.execute, with the client's own Http")

    def close(self) -> None:
        pass


@lru_cache(maxsize=32)
def _service(api: str, version: str, root_url: str, service_path: str) -> Any:
    """The service for one API at one base URL, built once per process (no credentials inside)."""
    raw = discovery_cache.get_static_doc(api, version)
    if raw is None:
        raise LookupError(f"google-api-python-client ships no discovery document for {api} {version}")
    document = orjson.loads(raw)
    document["rootUrl"] = root_url
    return build_from_document(document, http=_NoHttp(), client_options={"api_endpoint": root_url + service_path})


@lru_cache(maxsize=128)
def _collection(service: Any, path: tuple[str, ...]) -> Any:
    """A resource collection (`files`, `users.messages`, ...) of a shared service, built once."""
    node = service
    for name in path:
        node = getattr(node, name)()
    return node


def _drop_closed(http: httplib2.Http) -> None:
    """Close the kept-alive connections the server has closed while they were idle, as urllib3 does before it
    reuses one: an idle socket that is readable holds only an end of stream or a reset. httplib2 would send
    on it and fail with a broken pipe, which the hub may not retry for a write."""
    for conn in list(http.connections.values()):
        sock = conn.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            conn.close()


class GoogleClient:
    """One access token on a shared Google API service; subclasses name the resource collections they use."""

    display_name = "Google"

    def __init__(
        self,
        *,
        api: str,
        version: str,
        service_path: str,
        access_token: str,
        api_base: str,
        timeout: float,
    ) -> None:
        root = api_base.rstrip("/") + "/"
        self._credentials = Credentials(token=access_token)  # type: ignore[no-untyped-call]
        self._timeout = timeout
        self._local = threading.local()
        self._https: list[google_auth_httplib2.AuthorizedHttp] = []
        self._https_lock = threading.Lock()
        self.service: Any = _service(api, version, root, service_path)

    def collection(self, *path: str) -> Any:
        """The shared resource collection at `path`, e.g. `collection("users", "messages")`."""
        return _collection(self.service, path)

    async def execute(self, build: Callable[[], HttpRequest], *, needs: str) -> Any:
        """Build one SDK request and execute it in a worker thread; returns the decoded JSON, or the bytes of
        a media download. `needs` is the provider scope the call requires, named if Google refuses it."""
        return await asyncio.to_thread(self._execute, build, needs)

    def _execute(self, build: Callable[[], HttpRequest], needs: str) -> Any:
        request = build()
        try:
            answer = request.execute(http=self._http(), num_retries=0)
        except HttpError as exc:
            raise translate_http_error(exc, service=self.display_name, needs=needs) from None
        except TimeoutError:
            raise ProviderTimeout(f"{self.display_name} did not answer in time") from None
        except (OSError, httplib2.HttpLib2Error, http.client.HTTPException):
            raise ProviderUnavailable(f"{self.display_name} could not be reached") from None
        except ValueError:  # the SDK's JSON model could not decode the answer
            raise ProviderUnavailable(f"{self.display_name} answered with malformed JSON") from None
        if isinstance(answer, str):
            # The SDK's JSON model hands back the text of an answer it cannot decode; a media download is bytes.
            raise ProviderUnavailable(f"{self.display_name} answered with malformed JSON")
        return answer

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This worker thread's own authorised Http, made on its first call, without connections the server
        has closed meanwhile."""
        authorized: google_auth_httplib2.AuthorizedHttp | None = getattr(self._local, "http", None)
        if authorized is None:
            authorized = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._timeout), refresh_status_codes=()
            )
            with self._https_lock:
                self._https.append(authorized)
            self._local.http = authorized
        _drop_closed(authorized.http)
        return authorized

    def close(self) -> None:
        with self._https_lock:
            https, self._https = self._https, []
        for authorized in https:
            authorized.close()
