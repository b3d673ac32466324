"""Hostile bodies and clients: a body over 1 MiB on any route (declared or streamed) is a 413 or 400 problem
before it is buffered or authenticated; JSON nested thousands deep is a 400 or 422 problem, never a 500, and a
refused tool call with such arguments is still audited; made-up tool names add no metric series; and clients
that trickle their headers or body do not hold up anyone else."""

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.security.stack import MCP_HEADERS, Stack, audited

pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)

_LIMIT = 1 << 20
_SEARCH = "/v1/tools/hubspot_contacts_search/call"


@pytest.fixture(scope="module")
def key(stack: Stack) -> Iterator[str]:
    key = stack.hub.create_agent("body-agent")
    stack.hub.grant("body-agent", "crm", "crm.contacts.read")
    yield key


def _problem(answer: httpx.Response, *statuses: int) -> str:
    assert answer.status_code in statuses, (answer.request.url, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text[:300]
    kind: str = answer.json()["type"]
    return kind


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_body_over_a_mebibyte_is_refused_on_every_route(stack: Stack, key: str) -> None:
    big = b'{"arguments": {"query": "' + b"a" * (2 * _LIMIT) + b'"}}'

    def streamed() -> Iterator[bytes]:  # no Content-Length: the limit must hold as the bytes arrive
        yield big[: _LIMIT // 2]
        yield big[_LIMIT // 2 :]

    agent = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {stack.hub.admin_token}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with stack.hub.client() as http:
        for path, headers in (
            (_SEARCH, agent),
            ("/v1/usage", agent),
            ("/admin/api/agents", admin),
            ("/admin/api/agents", {"Content-Type": "application/json"}),  # not even signed in
            ("/admin/agents", form),
            ("/admin/logout", form),
            ("/approve/anything", form),
            ("/mcp", {**MCP_HEADERS, "Authorization": f"Bearer {key}"}),
        ):
            assert _problem(http.post(path, content=big, headers=headers), 413) == "payload_too_large"
            # Streamed, it is refused as it grows: 413 where the hub reads it itself, 400 where the framework
            # parses it for a route, as an unreadable body; or 401 before a byte of it is read.
            answer = http.post(path, content=streamed(), headers=headers)
            if answer.status_code != 401:  # the admin page's sign-in answer is a page
                _problem(answer, 400, 413)
        # Just under the limit is read and judged on its content.
        fits = b'{"arguments": {"query": "' + b"a" * (_LIMIT - 100) + b'"}}'
        assert _problem(http.post(_SEARCH, content=fits, headers=agent), 422) == "invalid_arguments"
        assert http.get("/healthz").status_code == 200


def test_deeply_nested_json_is_a_clean_refusal_and_a_refused_call_is_still_audited(stack: Stack, key: str) -> None:
    hub = stack.hub
    audited_before = {
        "search": audited(hub, agent="body-agent", tool="hubspot_contacts_search", problem="invalid_arguments"),
        "unknown": audited(hub, agent="body-agent", tool="hubspot_contacts_purge", problem="unknown_tool"),
    }
    agent = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {hub.admin_token}", "Content-Type": "application/json"}
    with hub.client() as http:
        # Deeper than any parser goes: the body is not JSON the hub will read.
        far = _nested(10_000)
        assert _problem(http.post(_SEARCH, content=b'{"arguments": {"query": ' + far + b"}}", headers=agent), 400)
        for path in ("/admin/api/agents", "/admin/api/explain", "/admin/api/grants"):
            _problem(http.post(path, content=far, headers=admin), 400, 422)
        _problem(http.post("/v1/usage", content=far, headers=agent), 400, 422)
        # Deep, but parseable: the call is refused on its arguments, and audited like any call.
        deep = b'{"arguments": {"query": ' + _nested(1000) + b"}}"
        assert _problem(http.post(_SEARCH, content=deep, headers=agent), 422) == "invalid_arguments"
        unknown = http.post("/v1/tools/hubspot_contacts_purge/call", content=deep, headers=agent)
        assert _problem(unknown, 404) == "unknown_tool"
        explained = http.post(
            "/admin/api/explain",
            content=b'{"agent": "body-agent", "tool": "hubspot_contacts_search", "arguments": {"query": '
            + _nested(500)
            + b"}}",
            headers=admin,
        )
        assert explained.status_code in (200, 400, 422), explained.text
        if explained.status_code == 200:
            assert explained.json()["outcome"] == "deny"
        # Over MCP: the SDK's parser refuses the deepest, the hub's validation the rest.
        mcp = {**MCP_HEADERS, "Authorization": f"Bearer {key}"}
        for depth in (10_000, 1000):
            call = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": '
            answer = http.post("/mcp", content=call + _nested(depth) + b"}}", headers=mcp)
            assert 400 <= answer.status_code < 500, (depth, answer.status_code, answer.text[:300])
        assert http.get("/healthz").status_code == 200
    after_search = audited(hub, agent="body-agent", tool="hubspot_contacts_search", problem="invalid_arguments")
    assert after_search == audited_before["search"] + 1
    after_unknown = audited(hub, agent="body-agent", tool="hubspot_contacts_purge", problem="unknown_tool")
    assert after_unknown == audited_before["unknown"] + 1


def test_made_up_tool_names_add_no_metric_series(stack: Stack, key: str) -> None:
    names = [f"made_up_tool_{n}" for n in range(30)]
    with stack.hub.agent(key) as agent:
        for name in names:
            assert agent.post(f"/v1/tools/{name}/call", json={}).status_code == 404
        metrics = httpx.get(f"{stack.hub.url}/metrics", timeout=30).text
    assert "made_up_tool" not in metrics
    assert 'tool="(unknown)"' in metrics
    assert audited(stack.hub, agent="body-agent", tool=names[-1], problem="unknown_tool") == 1


async def _slow(url: str, head: bytes, stop: asyncio.Event) -> bool:
    """Send `head`, then one byte every 0.1 s until `stop`; True if the server kept the connection open."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.1)
        return not reader.at_eof()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_slow_clients_do_not_hold_up_other_clients(stack: Stack, key: str) -> None:
    hub, stop = stack.hub, asyncio.Event()
    host = urlsplit(hub.url).netloc
    body = f"POST {_SEARCH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
    body += "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    form = f"POST /admin/agents HTTP/1.1\r\nHost: {host}\r\n"
    form += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    headers = f"GET /v1/tools HTTP/1.1\r\nHost: {host}\r\nX-Slow: "  # never finishes its headers
    slow = [
        asyncio.create_task(_slow(hub.url, head.encode(), stop)) for head in [body] * 10 + [form] * 5 + [headers] * 10
    ]
    await asyncio.sleep(0.5)  # every slow client is connected and trickling
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:

        async def timed(method: str, path: str, **kwargs: object) -> int:
            started = time.monotonic()
            answer = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
            latencies.append(time.monotonic() - started)
            return answer.status_code

        statuses = await asyncio.gather(
            *(timed("GET", "/healthz") for _ in range(10)),
            *(timed("POST", _SEARCH, json={"arguments": {"query": "ada"}}) for _ in range(10)),
        )
    still_trickling = not any(task.done() for task in slow)
    stop.set()
    await asyncio.gather(*slow, return_exceptions=True)
    assert statuses == [200] * 20
    assert still_trickling, "a slow client was dropped or finished before the others were served"
    assert max(latencies) < 5, f"normal requests waited behind slow clients: {sorted(latencies)[-3:]}"
