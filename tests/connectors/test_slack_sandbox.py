"""The Slack sandbox behaves like Slack: OAuth v2 (comma-separated scopes, HTTP 200 `ok: false` errors, PKCE,
optional token rotation), and Web API methods with Slack's visibility rules, cursors and error strings."""

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from hub.sandbox import SANDBOXES, _slack_oauth
from hub.sandbox.slack import SlackSandbox
from tests.sandbox.consent import ConsentForm, approve, pkce

CLIENT_ID, CLIENT_SECRET = "1234.5678", "sandbox-secret-0123"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
ALL_SCOPES = "channels:read,groups:read,channels:history,groups:history,users:read,users:read.email,chat:write"


def _consent(
    client: TestClient,
    *,
    prefix: str = "",
    scope: str = ALL_SCOPES,
    challenge: str | None = None,
    decision: str = "Allow",
) -> dict[str, str]:
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": scope, "state": "st-42"}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return approve(client, f"{prefix}/oauth/v2/authorize", params, decision=decision, redirect=REDIRECT)


def _access(client: TestClient, prefix: str = "", **form: str) -> dict[str, Any]:
    answer = client.post(f"{prefix}/api/oauth.v2.access", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer.status_code == 200  # Slack answers its errors as 200 too
    body: dict[str, Any] = answer.json()
    return body


def _install(client: TestClient, scope: str = ALL_SCOPES) -> dict[str, Any]:
    verifier, challenge = pkce()
    code = _consent(client, scope=scope, challenge=challenge)["code"]
    tokens = _access(client, code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert tokens["ok"] is True, tokens
    return tokens


def _call(client: TestClient, method: str, bearer: str | None, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    answer = client.post(f"/api/{method}", data=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def sandbox() -> SlackSandbox:
    return SlackSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def client(sandbox: SlackSandbox) -> Iterator[TestClient]:
    with TestClient(sandbox.app) as test_client:
        yield test_client


@pytest.fixture
def token(client: TestClient) -> str:
    access: str = _install(client)["access_token"]
    return access


def test_registered_as_the_slack_sandbox() -> None:
    assert SANDBOXES["slack"] is SlackSandbox


# -- OAuth -------------------------------------------------------------------------------------------------


def test_consent_lists_comma_separated_scopes_and_posts_back_under_the_mount(sandbox: SlackSandbox) -> None:
    host = Starlette(routes=[Mount("/sandbox/slack", app=sandbox.app)])
    with TestClient(host) as client:
        page = client.get(
            "/sandbox/slack/oauth/v2/authorize",
            params={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "state": "s",
                "scope": "channels:read,chat:write",
            },
        )
        form = ConsentForm()
        form.feed(page.text)
        assert form.action == "/sandbox/slack/oauth/v2/authorize"
        assert form.scopes == ["channels:read", "chat:write"]
        assert set(form.buttons) == {"Allow", "Cancel"}
        assert page.headers["cache-control"] == "no-store"
        code = _consent(client, prefix="/sandbox/slack", scope="channels:read")["code"]
        tokens = _access(client, "/sandbox/slack", code=code, redirect_uri=REDIRECT)
        listed = client.get(
            "/sandbox/slack/api/conversations.list", headers={"Authorization": "Bearer " + tokens["access_token"]}
        )
        assert listed.json()["ok"] is True
    assert ("GET", "/api/conversations.list") in sandbox.stats.requests  # paths relative to the mount


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "someone-else", "redirect_uri": REDIRECT, "scope": "chat:write"},
        {"client_id": CLIENT_ID, "scope": "chat:write"},
        {"client_id": CLIENT_ID, "redirect_uri": "javascript:alert(1)", "scope": "chat:write"},
        {"client_id": CLIENT_ID, "redirect_uri": REDIRECT},
        {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": "chat:write admin"},  # spaces: not Slack's form
        {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": "chat:write", "code_challenge": "a"},
    ],
)
def test_bad_authorize_request_gets_an_html_400(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/oauth/v2/authorize", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text


def test_cancel_redirects_with_access_denied_and_state(client: TestClient) -> None:
    assert _consent(client, decision="Cancel") == {"error": "access_denied", "state": "st-42"}


def test_exchange_answers_slacks_shape_with_a_bot_token_that_never_expires(client: TestClient) -> None:
    tokens = _install(client, scope="chat:write,channels:read")
    assert tokens["access_token"].startswith("xoxb-")
    assert tokens["token_type"] == "bot"
    assert tokens["scope"] == "channels:read,chat:write"
    assert tokens["team"] == {"id": "T0SANDBOX1", "name": "Switchboard Sandbox"}
    assert tokens["bot_user_id"] and tokens["app_id"] and tokens["authed_user"]["id"]
    assert "refresh_token" not in tokens and "expires_in" not in tokens


def test_token_errors_are_http_200_ok_false(client: TestClient) -> None:
    verifier, challenge = pkce()
    code = _consent(client, challenge=challenge)["code"]
    assert _access(client, code=code, redirect_uri=REDIRECT, code_verifier="wrong" * 10)["error"] == (
        "invalid_code_verifier"
    )
    assert _access(client, code=code, redirect_uri=REDIRECT, code_verifier=verifier)["error"] == "invalid_code"
    other = _consent(client)["code"]
    assert _access(client, code=other, redirect_uri="http://127.0.0.1:9/elsewhere")["error"] == "bad_redirect_uri"
    assert _access(client, grant_type="password")["error"] == "invalid_grant_type"
    assert _access(client, grant_type="refresh_token", refresh_token="xoxe-1-nope")["error"] == "invalid_refresh_token"
    wrong = client.post("/api/oauth.v2.access", data={"code": "x"}, auth=(CLIENT_ID, "not-the-secret"))
    assert wrong.json() == {"ok": False, "error": "bad_client_secret"}
    unknown = client.post("/api/oauth.v2.access", data={"code": "x", "client_id": "9.9", "client_secret": "s"})
    assert unknown.json() == {"ok": False, "error": "invalid_client_id"}


def test_codes_expire_after_ten_minutes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _consent(client)["code"]
    now = _slack_oauth._clock()
    monkeypatch.setattr(_slack_oauth, "_clock", lambda: now + _slack_oauth.CODE_TTL + 1)
    assert _access(client, code=code, redirect_uri=REDIRECT)["error"] == "invalid_code"


def test_rotation_issues_expiring_tokens_and_spends_each_refresh_token_once() -> None:
    sandbox = SlackSandbox(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token_ttl=60, rotate_refresh_tokens=True
    )
    with TestClient(sandbox.app) as client:
        first = _install(client, scope="channels:read")
        assert first["access_token"].startswith("xoxe.xoxb-") and first["refresh_token"].startswith("xoxe-1-")
        assert first["expires_in"] == 60
        second = _access(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert second["ok"] is True and second["refresh_token"] != first["refresh_token"]
        assert second["scope"] == "channels:read" and second["team"]["name"] == "Switchboard Sandbox"
        again = _access(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert again == {"ok": False, "error": "invalid_refresh_token"}
        sandbox.expire_access_tokens()
        assert _call(client, "conversations.list", second["access_token"])["error"] == "token_expired"
        third = _access(client, grant_type="refresh_token", refresh_token=second["refresh_token"])
        assert _call(client, "conversations.list", third["access_token"])["ok"] is True
        assert sandbox.stats.token_requests == {"authorization_code": 1, "refresh_token": 3}
        assert set(client.get("/_control/issued-tokens").json()["tokens"]) >= {
            first["access_token"],
            first["refresh_token"],
            third["refresh_token"],
        }


# -- Web API -----------------------------------------------------------------------------------------------


def test_auth_errors(client: TestClient, token: str) -> None:
    assert _call(client, "auth.test", None) == {"ok": False, "error": "not_authed"}
    assert _call(client, "auth.test", "xoxb-forged")["error"] == "invalid_auth"
    assert _call(client, "auth.test", token)["team"] == "Switchboard Sandbox"
    assert _call(client, "auth.test", None, token=token)["ok"] is True  # the token may also be an argument
    assert client.post("/_control/revoke-all").status_code == 204
    assert _call(client, "auth.test", token)["error"] == "token_revoked"


def test_unknown_method_is_a_404(client: TestClient, token: str) -> None:
    answer = client.get("/api/chat.unknownThing", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_method"


def test_channels_list_shows_public_channels_and_only_private_ones_the_bot_is_in(
    client: TestClient, token: str
) -> None:
    public = _call(client, "conversations.list", token, exclude_archived="true", limit=100)
    names = {c["name"] for c in public["channels"]}
    assert names == {"general", "random", "engineering", "design"}  # default types: public only
    both = _call(client, "conversations.list", token, types="public_channel,private_channel", limit=100)
    by_name = {c["name"]: c for c in both["channels"]}
    assert "leadership" in by_name and "payroll" not in by_name and "old-news" in by_name
    assert by_name["leadership"]["is_private"] and by_name["leadership"]["is_member"]
    assert not by_name["design"]["is_member"]
    assert both["response_metadata"]["next_cursor"] == ""

    seen: list[str] = []
    cursor = ""
    while True:
        page = _call(
            client, "conversations.list", token, types="public_channel,private_channel", limit=2, cursor=cursor
        )
        assert len(page["channels"]) <= 2
        seen += [c["id"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == [c["id"] for c in both["channels"]]
    assert _call(client, "conversations.list", token, cursor="bm90IGEgY3Vyc29y")["error"] == "invalid_cursor"
    assert _call(client, "conversations.list", token, types="shared")["error"] == "invalid_types"


def test_missing_scope_names_what_is_needed(client: TestClient) -> None:
    narrow = _install(client, scope="channels:read,channels:history")["access_token"]
    listed = _call(client, "conversations.list", narrow, types="public_channel,private_channel")
    assert listed["error"] == "missing_scope" and listed["needed"] == "groups:read"
    assert listed["provided"] == "channels:history,channels:read"
    private = _call(client, "conversations.history", narrow, channel="G0LEADERS1")
    assert (private["error"], private["needed"]) == ("missing_scope", "groups:history")
    posted = _call(client, "chat.postMessage", narrow, channel="C0GENERAL1", text="hi")
    assert (posted["error"], posted["needed"]) == ("missing_scope", "chat:write")
    email = _call(client, "users.lookupByEmail", narrow, email="ada@analytical-engines.example.com")
    assert email["needed"] == "users:read.email"


def test_history_is_newest_first_with_threads_and_cursor(client: TestClient, token: str) -> None:
    first = _call(client, "conversations.history", token, channel="C0GENERAL1", limit=2)
    assert first["has_more"] is True and len(first["messages"]) == 2
    rest = _call(
        client, "conversations.history", token, channel="C0GENERAL1", cursor=first["response_metadata"]["next_cursor"]
    )
    messages = first["messages"] + rest["messages"]
    stamps = [float(m["ts"]) for m in messages]
    assert stamps == sorted(stamps, reverse=True) and rest["has_more"] is False
    parent = next(m for m in messages if m.get("reply_count"))
    assert parent["reply_count"] == 2 and parent["thread_ts"] == parent["ts"]
    assert all(m.get("thread_ts") in (None, m["ts"]) for m in messages)  # replies stay in their thread

    thread = _call(client, "conversations.replies", token, channel="C0GENERAL1", ts=parent["ts"])
    assert thread["messages"][0]["ts"] == parent["ts"] and len(thread["messages"]) == 3
    assert all(m["thread_ts"] == parent["ts"] for m in thread["messages"])
    paged = _call(client, "conversations.replies", token, channel="C0GENERAL1", ts=parent["ts"], limit=2)
    more = _call(
        client,
        "conversations.replies",
        token,
        channel="C0GENERAL1",
        ts=parent["ts"],
        cursor=paged["response_metadata"]["next_cursor"],
    )
    assert [m["ts"] for m in paged["messages"] + more["messages"]] == [m["ts"] for m in thread["messages"]]

    window = _call(client, "conversations.history", token, channel="C0GENERAL1", oldest=parent["ts"], inclusive="true")
    assert window["messages"][-1]["ts"] == parent["ts"]
    assert (
        _call(client, "conversations.history", token, channel="C0GENERAL1", oldest="soon")["error"]
        == "invalid_ts_oldest"
    )
    assert (
        _call(client, "conversations.replies", token, channel="C0GENERAL1", ts="1.000001")["error"]
        == "thread_not_found"
    )


@pytest.mark.parametrize(
    ("channel", "error"),
    [("C0DESIGN01", "not_in_channel"), ("G0PAYROLL1", "channel_not_found"), ("C0NOSUCH01", "channel_not_found")],
)
def test_reading_needs_a_channel_the_bot_is_in(client: TestClient, token: str, channel: str, error: str) -> None:
    assert _call(client, "conversations.history", token, channel=channel)["error"] == error
    assert _call(client, "chat.postMessage", token, channel=channel, text="hi")["error"] == error


def test_a_posted_message_and_reply_appear_in_history_and_thread(client: TestClient, token: str) -> None:
    posted = _call(client, "chat.postMessage", token, channel="C0RANDOM01", text="Chess at 12:30?")
    assert (
        posted["channel"] == "C0RANDOM01"
        and posted["message"]["bot_id"]
        and posted["message"]["text"] == "Chess at 12:30?"
    )
    reply = client.post(
        "/api/chat.postMessage",
        json={"channel": "C0RANDOM01", "text": "Count me in", "thread_ts": posted["ts"], "reply_broadcast": True},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert reply["message"]["thread_ts"] == posted["ts"] and reply["message"]["subtype"] == "thread_broadcast"
    history = _call(client, "conversations.history", token, channel="C0RANDOM01", limit=2)["messages"]
    assert [m["ts"] for m in history] == [reply["ts"], posted["ts"]]
    assert history[1]["reply_count"] == 1
    assert float(posted["ts"]) > float(history[-1]["ts"]) - 1  # new messages take the current time
    assert _call(client, "chat.postMessage", token, channel="C0OLDNEWS1", text="x")["error"] == "is_archived"
    assert _call(client, "chat.postMessage", token, channel="C0RANDOM01", text=" ")["error"] == "no_text"
    assert _call(client, "chat.postMessage", token, channel="C0RANDOM01", text="x" * 40_001)["error"] == "msg_too_long"
    assert _call(client, "chat.postMessage", token, channel="C0RANDOM01", text="x", thread_ts="1.000001")["error"] == (
        "thread_not_found"
    )


def test_users_by_id_and_email_with_email_only_under_its_scope(client: TestClient, token: str) -> None:
    ada = _call(client, "users.info", token, user="U0ADA00001")["user"]
    assert ada["real_name"] == "Ada Lovelace" and ada["profile"]["email"] == "ada@analytical-engines.example.com"
    by_email = _call(client, "users.lookupByEmail", token, email="GRACE@navy.example.com")["user"]
    assert by_email["id"] == "U0GRACE001"
    assert _call(client, "users.info", token, user="U0NOBODY01")["error"] == "user_not_found"
    assert _call(client, "users.lookupByEmail", token, email="eve@example.com")["error"] == "users_not_found"
    without = _install(client, scope="users:read")["access_token"]
    assert "email" not in _call(client, "users.info", without, user="U0ADA00001")["user"]["profile"]


def test_throttle_answers_429_ratelimited_with_retry_after(client: TestClient, token: str) -> None:
    assert client.post("/_control/throttle", json={"count": 2, "retry_after": 7}).status_code == 204
    for _ in range(2):
        limited = client.post("/api/auth.test", headers={"Authorization": f"Bearer {token}"})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
        assert limited.json() == {"ok": False, "error": "ratelimited"}
    assert _call(client, "auth.test", token)["ok"] is True
    client.post("/_control/throttle", json={"count": 1, "retry_after": None})
    assert client.post("/api/auth.test").headers["retry-after"] == "1"  # Slack always says when
    assert client.post("/_control/throttle", json={"count": -1}).status_code == 400
    stats = client.get("/_control/stats").json()
    assert stats["api_requests"] == 4 and stats["token_requests"] == {"authorization_code": 1}
    assert client.post("/_control/reset-stats").status_code == 204
    assert client.get("/_control/stats").json()["api_requests"] == 0
