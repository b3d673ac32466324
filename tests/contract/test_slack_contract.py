"""The Slack connector against Slack's published Web API spec, served by prism.

prism checks each request against the spec and answers 422 with an `sl-violations` header when it does not
conform (the connector maps 422 to ProviderRejected); otherwise it answers with the spec's examples.
`Prefer: code=NNN` makes it answer with that status instead, which proves the status half of the error
mapping. What prism cannot serve is covered against the sandbox (tests/connectors/test_slack_tools.py):
real Slack's HTTP 200 `{"ok": false, "error": ...}` failures (prism answers errors as 4xx), the
`needed` scope of `missing_scope`, and Retry-After on 429 (prism sends none). The OAuth token method's
answers are covered by tests/connectors/test_slack_oauth.py.

The last tests keep the sandbox honest the other way round: its answers must fit the spec's response
schemas, success and error alike. One erratum, applied on purpose: Slack pages conversations.history and
conversations.replies with `response_metadata.next_cursor`, which the spec leaves out of both.
"""

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from starlette.testclient import TestClient

from connectors import CONNECTORS
from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from connectors.slack.client import SlackClient
from hub.sandbox.slack import SlackSandbox
from tests.connectors.test_slack_sandbox import CLIENT_ID, CLIENT_SECRET, _install
from tests.contract.prism import ROOT, serve_prism
from tests.contract.spec import SpecSchemas

SPEC = ROOT.parent / "shared" / "specs" / "slack-web-api.oas3.json"
TOOLS = {t.name: t for t in CONNECTORS["slack"].tools}
TOKEN = "xoxb-contract-test-token"

# Realistic arguments for every tool; a new tool fails `test_tool_request_conforms` until it has a case here.
CASES: dict[str, list[dict[str, Any]]] = {
    "slack_channels_list": [{}, {"limit": 200, "cursor": "dGVhbTpDMDYxRkE1UEI=", "include_archived": True}],
    "slack_messages_history": [
        {"channel": "C012AB3CD"},
        {
            "channel": "C012AB3CD",
            "limit": 100,
            "cursor": "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz",
            "oldest": "1512085950.000216",
            "latest": "1512104434",
        },
    ],
    "slack_thread_replies": [
        {"channel": "C012AB3CD", "thread_ts": "1482960137.003543"},
        {"channel": "G0LEADERS1", "thread_ts": "1482960137.003543", "limit": 5, "cursor": "bmV4dF90czox"},
    ],
    "slack_messages_post": [{"channel": "C1H9RESGL", "text": "Here's a message for you: *bold* <https://x.io|link>"}],
    "slack_thread_reply": [
        {"channel": "C1H9RESGL", "thread_ts": "1503435956.000247", "text": "In the thread"},
        {"channel": "C1H9RESGL", "thread_ts": "1503435956.000247", "text": "Also here", "also_send_to_channel": True},
    ],
    "slack_users_lookup": [{"user_id": "W012A3CDE"}, {"email": "spengler@ghostbusters.example.com"}],
}
ERRORS: dict[int, type[ConnectorError]] = {
    400: ProviderRejected,
    401: ProviderAuthExpired,
    403: ProviderForbidden,
    404: ProviderNotFound,
    429: ProviderRateLimited,
    500: ProviderUnavailable,
}


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_prism({"prism": SPEC}, tmp_path_factory.mktemp("prism")) as urls:
        yield urls["prism"]


def _client(base: str, prefer: int | None = None) -> tuple[SlackClient, list[str]]:
    """The connector's real client, plus the `sl-violations` prism reported for any of its requests."""
    violations: list[str] = []
    trace = aiohttp.TraceConfig()

    async def on_end(session: object, context: object, params: aiohttp.TraceRequestEndParams) -> None:
        # Only the request's: prism also reports where the spec's own examples break its response schemas
        # (e.g. `response_metadata` on conversations.replies, which real Slack sends).
        found = json.loads(params.response.headers.get("sl-violations") or "[]")
        if ours := [v for v in found if v.get("location", [""])[0] == "request"]:
            violations.append(f"{params.method} {params.url.path}: {json.dumps(ours)}")

    trace.on_request_end.append(on_end)
    client = SlackClient(access_token=TOKEN, api_base=f"{base}/api", timeout=10, trace_configs=[trace])
    if prefer is not None:
        for sdk in (client.reader, client.writer):
            sdk.headers["Prefer"] = f"code={prefer}"
    return client, violations


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_tool_request_conforms(prism: str, name: str) -> None:
    tool = TOOLS[name]
    assert CASES.get(name), f"add realistic arguments for {name} to CASES"
    for arguments in CASES[name]:
        client, violations = _client(prism)
        try:
            result = await tool.invoke(client, tool.input_model.model_validate(arguments))
        except ProviderRejected:
            pytest.fail(f"{name}({arguments}) does not conform to Slack's spec:\n" + "\n".join(violations))
        finally:
            await client.aclose()
        assert isinstance(result, tool.output_model)
        assert not violations, "\n".join(violations)


@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_provider_error_maps_to_connector_error(prism: str, name: str, status: int) -> None:
    tool = TOOLS[name]
    client, violations = _client(prism, prefer=status)
    try:
        with pytest.raises(ERRORS[status]) as caught:
            await tool.invoke(client, tool.input_model.model_validate(CASES[name][-1]))
    finally:
        await client.aclose()
    assert not violations, "\n".join(violations)
    assert TOKEN not in caught.value.message
    if status == 429:
        assert isinstance(caught.value, ProviderRateLimited)
        assert caught.value.retry_after is None  # prism sends no Retry-After; the sandbox test checks Slack's


async def test_prism_refuses_a_request_that_breaks_the_spec(prism: str) -> None:
    # The checks above are only as good as prism's refusal: the SDK sends a Python True as "1", which the
    # spec's boolean `exclude_archived` does not accept (the tool sends "true" for that reason).
    client, violations = _client(prism)
    try:
        with pytest.raises(ProviderRejected):
            await client.call(client.reader.conversations_list, exclude_archived=True)
        with pytest.raises(SlackApiError):
            await client.reader.conversations_list(exclude_archived=True)
        # JSON bodies are checked too: reply_broadcast is a boolean.
        with pytest.raises(ProviderRejected):
            await client.call(client.writer.chat_postMessage, channel="C1H9RESGL", text="x", reply_broadcast="yes")
    finally:
        await client.aclose()
    assert [("exclude_archived" in v, "reply_broadcast" in v) for v in violations] == [
        (True, False),
        (True, False),
        (False, True),
    ]


# -- the sandbox against the spec ----------------------------------------------------------------------------

SPEC_URI = "urn:slack-web-api"


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC.read_text())
    for method in ("conversations.history", "conversations.replies"):
        schema = spec["paths"][f"/api/{method}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "response_metadata" not in schema["properties"], f"the spec changed: review the erratum for {method}"
        schema["properties"]["response_metadata"] = {
            "type": "object",
            "properties": {"next_cursor": {"type": "string"}},
            "required": ["next_cursor"],
        }
    return spec


_SPEC = _spec()
SPEC_PATHS: dict[str, Any] = _SPEC["paths"]
SCHEMAS = SpecSchemas(_SPEC, SPEC_URI)


def _conforms(method: str, answer: dict[str, Any]) -> None:
    status = "200" if answer.get("ok") else "default"
    verb = "get" if "get" in SPEC_PATHS[f"/api/{method}"] else "post"  # chat.postMessage is POST only
    errors = SCHEMAS.problems(
        answer, "paths", f"/api/{method}", verb, "responses", status, "content", "application/json", "schema"
    )
    assert not errors, f"{method} {answer}:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def sandbox_api() -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(SlackSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).app) as client:
        yield client, {"Authorization": f"Bearer {_install(client)['access_token']}"}


def test_sandbox_successes_fit_the_spec(sandbox_api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = sandbox_api

    def call(method: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = client.post(f"/api/{method}", data=params, headers=auth).json()
        assert answer["ok"] is True, answer
        _conforms(method, answer)
        return answer

    call("auth.test")
    call("conversations.list", types="public_channel,private_channel", limit=3)
    posted = call("chat.postMessage", channel="C0GENERAL1", text="Spec check")
    call("chat.postMessage", channel="C0GENERAL1", text="In thread", thread_ts=posted["ts"], reply_broadcast="true")
    history = call("conversations.history", channel="C0GENERAL1", limit=3)
    assert any(m.get("reply_count") for m in history["messages"])
    call("conversations.replies", channel="C0GENERAL1", ts=posted["ts"])
    call("users.info", user="U0GRACE001")
    call("users.lookupByEmail", email="grace@navy.example.com")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("conversations.history", {"channel": "C0NOSUCH01"}),
        ("conversations.replies", {"channel": "C0GENERAL1", "ts": "1000000000.000001"}),
        ("chat.postMessage", {"channel": "C0DESIGN01", "text": "x"}),
        ("users.info", {"user": "U0NOBODY01"}),
        ("users.lookupByEmail", {"email": "eve@example.com"}),
    ],
)
def test_sandbox_errors_fit_the_spec(
    sandbox_api: tuple[TestClient, dict[str, str]], method: str, params: dict[str, str]
) -> None:
    client, auth = sandbox_api
    answer = client.post(f"/api/{method}", data=params, headers=auth)
    assert answer.status_code == 200 and answer.json()["ok"] is False
    _conforms(method, answer.json())
