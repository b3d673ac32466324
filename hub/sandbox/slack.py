"""A small, stateful, in-memory Slack: OAuth v2 plus the Web API methods the connector calls.

The hub mounts `SlackSandbox(...).app` at `/sandbox/slack` in demo mode; tests serve it alone. Like Slack,
every Web API method lives at `/api/<method>`, takes its arguments from the query string, a form or a JSON
body and the token from `Authorization: Bearer` (or a `token` argument), and answers HTTP 200 with `ok`:
failures are `{"ok": false, "error": "channel_not_found"}`, a missing scope adds `needed` and `provided`,
an unknown method is a 404 and a rate limit a 429 `ratelimited` with Retry-After.

Methods: `auth.test`, `conversations.list`, `conversations.history`, `conversations.replies`,
`chat.postMessage`, `users.info`, `users.lookupByEmail`.

Test hooks live under `/_control/`: `POST expire-tokens`, `GET stats`, `POST reset-stats`, `GET issued-tokens`,
`POST revoke-all` (uninstall: every token stops working) and `POST throttle` (`{"count": N, "retry_after": S |
null}`: the next N API calls get Slack's 429; Slack always sends Retry-After, so null means 1 second) and
`POST fault` (slow answers, 5xx, resets, malformed JSON: see `hub.sandbox._control`).
"""

import threading
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox._common import SandboxStats, json_response
from hub.sandbox._control import Controls, Throttle, decode_object, throttle_from
from hub.sandbox._slack_oauth import OAuthServer
from hub.sandbox._slack_workspace import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    INSTALLER,
    TEAM_ID,
    TEAM_NAME,
    TEAM_NUMBER,
    SlackError,
    Workspace,
)

__all__ = ["SandboxStats", "SlackSandbox"]

_TOKEN_PATH = "/api/oauth.v2.access"
_TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}
Params = dict[str, Any]
Handler = Callable[[frozenset[str], Params], Params]


def _error(exc: SlackError, headers: dict[str, str] | None = None) -> Response:
    return json_response({"ok": False, "error": exc.error, **exc.extra}, exc.status_code, headers)


def _need(scopes: frozenset[str], *acceptable: str) -> None:
    """Slack's scope check: any one of `acceptable` will do; `needed` lists them, `provided` what the token has."""
    if not scopes.intersection(acceptable):
        raise SlackError("missing_scope", needed=",".join(acceptable), provided=",".join(sorted(scopes)))


async def _params(request: Request) -> Params:
    params: Params = dict(request.query_params)
    if request.method != "POST":
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("json_not_object")
        params |= body
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        params |= {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
    return params


def _read_throttle(raw: bytes) -> Throttle:
    body = decode_object(raw)
    if body is None:
        raise SlackError("invalid_json", 400)
    throttle = throttle_from(body)
    if throttle is None or throttle.count < 0:
        raise SlackError("invalid_arguments", 400)
    # Slack always sends Retry-After: no value asked for means 1 second.
    return Throttle(throttle.count, 1 if throttle.retry_after is None else max(throttle.retry_after, 0))


def _throttled(throttle: Throttle) -> Response:
    return json_response({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(throttle.retry_after)})


def _failed(status: int, message: str) -> Response:
    # Slack's error strings carry no message; the status picks the one Slack uses for it.
    error = "invalid_arguments" if status < 500 else "service_unavailable" if status == 503 else "internal_error"
    return _error(SlackError(error, status))


async def _slack_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SlackError)  # only the control hooks raise out of a route: the API answers its own
    return _error(exc)


class SlackSandbox:
    """One Slack workspace with one installed app (`client_id`/`client_secret`)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token_ttl: int = 43200,
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
            installation={
                "app_id": APP_ID,
                "bot_user_id": BOT_USER_ID,
                "team": {"id": TEAM_ID, "name": TEAM_NAME},
                "team_number": TEAM_NUMBER,
                "authed_user": {"id": INSTALLER},
            },
        )
        self.workspace = Workspace()
        self._controls = Controls(
            lock=self._lock,
            stats=self.stats,
            tokens=self._oauth,
            is_api=lambda path: path.startswith("/api/") and path != _TOKEN_PATH,
            read_throttle=_read_throttle,
            throttled=_throttled,
            error=_failed,
        )
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "chat.postMessage": self._chat_post_message,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
        }
        self.app = Starlette(
            routes=[
                *self._oauth.routes(),
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                *self._controls.routes(),
            ],
            middleware=[self._controls.middleware()],
            exception_handlers={SlackError: _slack_error_handler},
        )

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers `token_expired`."""
        self._oauth.expire_access_tokens()

    # -- per request -------------------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        name: str = request.path_params["method"]
        handler = self._methods.get(name)
        if handler is None:
            return _error(SlackError("unknown_method", 404, req_method=name[:100]))
        try:
            params = await _params(request)
        except SlackError as exc:
            return _error(exc)
        authorization = request.headers.get("authorization", "")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else params.pop("token", None)
        params.pop("token", None)
        scopes = self._oauth.authenticate(token if isinstance(token, str) else None)
        if isinstance(scopes, str):
            return _error(SlackError(scopes))
        headers = {"X-OAuth-Scopes": ",".join(sorted(scopes))}
        try:
            with self._lock:
                return json_response(handler(scopes, params), 200, headers)
        except SlackError as exc:
            return _error(exc, headers)

    # -- Web API methods -----------------------------------------------------------------------------------

    def _auth_test(self, scopes: frozenset[str], params: Params) -> Params:
        return {
            "ok": True,
            "url": "https://switchboard-sandbox.slack.com/",
            "team": TEAM_NAME,
            "user": "switchboard",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversations_list(self, scopes: frozenset[str], params: Params) -> Params:
        types = [t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()]
        if not types or any(t not in _TYPE_SCOPES for t in types):
            raise SlackError("invalid_types")
        for kind in types:
            _need(scopes, _TYPE_SCOPES[kind])
        return self.workspace.list_channels(
            BOT_USER_ID,
            types=types,
            exclude_archived=str(params.get("exclude_archived", "")).lower() in ("1", "true"),
            limit=params.get("limit"),
            cursor=params.get("cursor") or None,
        )

    def _history_scope(self, scopes: frozenset[str], params: Params) -> str | None:
        _need(scopes, "channels:history", "groups:history")
        channel = params.get("channel")
        channel_id = channel if isinstance(channel, str) else None
        private = self.workspace.channel_kind(channel_id, BOT_USER_ID)
        if private is not None:
            _need(scopes, "groups:history" if private else "channels:history")
        return channel_id

    def _conversations_history(self, scopes: frozenset[str], params: Params) -> Params:
        channel = self._history_scope(scopes, params)
        return self.workspace.history(channel, BOT_USER_ID, params)

    def _conversations_replies(self, scopes: frozenset[str], params: Params) -> Params:
        channel = self._history_scope(scopes, params)
        return self.workspace.replies(channel, BOT_USER_ID, params)

    def _chat_post_message(self, scopes: frozenset[str], params: Params) -> Params:
        _need(scopes, "chat:write")
        channel = params.get("channel")
        return self.workspace.post(channel if isinstance(channel, str) else None, BOT_USER_ID, params)

    def _users_info(self, scopes: frozenset[str], params: Params) -> Params:
        _need(scopes, "users:read")
        user = params.get("user")
        found = self.workspace.user(user if isinstance(user, str) else None, with_email="users:read.email" in scopes)
        return {"ok": True, "user": found}

    def _users_lookup_by_email(self, scopes: frozenset[str], params: Params) -> Params:
        _need(scopes, "users:read.email")
        email = params.get("email")
        return {"ok": True, "user": self.workspace.user_by_email(email if isinstance(email, str) else None)}
