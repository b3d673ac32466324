"""The Slack SDK, built once per connection and token, and the mapping of its errors.

`slack_sdk`'s synchronous `WebClient` opens a new connection (and TLS handshake) for every call; its
`AsyncWebClient` runs on an `aiohttp` session that keeps connections alive, so that is what we use: one
session per connection and token, opened lazily inside the event loop that uses it, and one SDK client on it,
without retry handlers. The connector's reads are GETs, which aiohttp itself sends once more when their
connection drops before an answer (RFC 9112 §9.3.1; a second retry in the SDK made that four attempts); its
writes are POSTs, never retried (a retried post could appear twice). The hub does the rate-limit retries of
reads itself.

Slack reports failures as HTTP 200 `{"ok": false, "error": "..."}` (and 429 with Retry-After for rate
limits); mocks of its spec answer 4xx statuses instead. `_translate` understands both.
"""

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

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

__all__ = ["SlackClient"]

_POOL_SIZE = 32
# The SDK formats a debug line with every request and response body when its logger's *own* level is unset;
# a fixed WARNING level keeps message contents out of the logs and saves the formatting on every call.
_SDK_LOG = logging.getLogger("connectors.slack.sdk")
_SDK_LOG.setLevel(logging.WARNING)

_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}$")
_AUTH = frozenset({"not_authed", "invalid_auth", "token_expired", "token_revoked", "account_inactive"})
_NOT_FOUND = frozenset(
    {"channel_not_found", "user_not_found", "users_not_found", "thread_not_found", "message_not_found"}
)
_UNAVAILABLE = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
_HINTS: Mapping[str, str] = {
    "channel_not_found": "no such channel, or the app cannot see it (a private channel only once the app is in it)",
    "user_not_found": "no such user",
    "users_not_found": "no user has that email address in this workspace",
    "thread_not_found": "no thread starts at that ts in this channel",
    "message_not_found": "no such message",
    "not_in_channel": "the app is not a member of this channel; someone in it must invite the app first",
    "is_archived": "the channel is archived",
    "msg_too_long": "the message text is too long",
    "no_text": "the message has no text",
    "invalid_cursor": "the cursor is invalid or expired; start again without it",
    "invalid_ts_latest": "`latest` is not a valid message ts",
    "invalid_ts_oldest": "`oldest` is not a valid message ts",
    "restricted_action": "the workspace does not allow the app to post in this channel",
}


class SlackClient:
    def __init__(
        self,
        *,
        access_token: str,
        api_base: str,
        timeout: float,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self._token = access_token
        self._base_url = api_base.rstrip("/") + "/"  # the SDK joins method names onto it: the slash matters
        self._timeout = timeout
        self._http = LazySession(timeout=timeout, pool_size=_POOL_SIZE, trace_configs=trace_configs)
        self._sdk: AsyncWebClient | None = None

    @property
    def reader(self) -> AsyncWebClient:
        """The SDK client, for reads (GETs, which aiohttp retries once on a dropped connection)."""
        return self._client()

    @property
    def writer(self) -> AsyncWebClient:
        """The SDK client, for writes (POSTs, never retried)."""
        return self._client()

    def _client(self) -> AsyncWebClient:
        if self._sdk is None or not self._http.opened:
            self._sdk = AsyncWebClient(
                token=self._token,
                base_url=self._base_url,
                timeout=self._timeout,  # type: ignore[arg-type]  # a float works: it becomes aiohttp's ClientTimeout
                session=self._http.get(),
                logger=_SDK_LOG,
                retry_handlers=[],
            )
        return self._sdk

    async def call(self, method: Callable[..., Awaitable[AsyncSlackResponse]], /, **kwargs: Any) -> dict[str, Any]:
        """Run one SDK method (of `reader` or `writer`) and return Slack's JSON body."""
        try:
            response = await method(**kwargs)
        except SlackApiError as exc:
            raise _translate(exc.response) from None
        except TimeoutError:
            raise ProviderTimeout("Slack did not answer in time") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # A GET has been sent twice already (see above); the hub never retries a write anyway.
            retried = not isinstance(exc, aiohttp.ClientConnectorError)  # refused: never sent, never retried
            raise ProviderUnavailable("Slack could not be reached", retried=retried) from None
        except (aiohttp.ClientError, SlackClientError, OSError, ValueError):
            raise ProviderUnavailable("Slack could not be reached") from None
        data = response.data
        if not isinstance(data, dict):
            raise ProviderUnavailable("Slack answered with something other than a JSON object")
        return data

    async def aclose(self) -> None:
        self._sdk = None
        await self._http.aclose()

    def close(self) -> None:
        """Close the connection pool; callable from inside or outside the loop that opened it."""
        self._sdk = None
        self._http.close()


def _error_code(data: Any) -> str:
    error = data.get("error") if isinstance(data, Mapping) else None
    return error if isinstance(error, str) and _ERROR_CODE.match(error) else ""


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _translate(response: Any) -> ConnectorError:
    """Slack's failure as a connector error: by HTTP status when it is not 2xx (429, 5xx, and the 4xx a mock
    of its spec answers), otherwise by the `error` string of its `ok: false` body. An answer that is not JSON
    comes as the raw aiohttp response (`status`, no `data`): an unreadable answer, not a refusal."""
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    error = _error_code(data)
    described = f" ({error}: {_HINTS[error]})" if error in _HINTS else f" ({error})" if error else ""
    if status == 429 or error in ("ratelimited", "rate_limited"):
        return ProviderRateLimited("Slack rate limit reached", _retry_after(getattr(response, "headers", {})))
    if status >= 500 or (status < 400 and error in _UNAVAILABLE):
        return ProviderUnavailable(f"Slack failed to answer{described}")
    if status < 400 and not isinstance(data, Mapping):
        return ProviderUnavailable("Slack answered with malformed JSON")
    if status == 401 or (status < 400 and error in _AUTH):
        return ProviderAuthExpired(f"Slack refused the access token{described}")
    if status == 403 or (status < 400 and error == "missing_scope"):
        needed = data.get("needed") if isinstance(data, Mapping) and error == "missing_scope" else None
        missing = tuple(
            s.strip() for s in str(needed or "").split(",") if _ERROR_CODE.match(s.strip().replace(":", "_"))
        )
        named = f": needs {', '.join(missing)}" if missing else ""
        return ProviderForbidden(f"Slack refused the call{named}", missing)
    if status == 404 or (status < 400 and error in _NOT_FOUND):
        return ProviderNotFound(f"Slack found nothing{described}")
    return ProviderRejected(f"Slack rejected the request{described}")
