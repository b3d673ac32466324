"""hub/client.py, the runtimes' client: typed outcomes and problems, Anthropic tool_result blocks a model can
read, and nothing imported from the rest of the hub. Against a running hub (SQLite and PostgreSQL): the
per-agent tool descriptions that say what the grants impose, in every format and over MCP alike."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anthropic.types import Message

from connectors import TOOLS
from hub.client import (
    AsyncSwitchboard,
    Pending,
    Switchboard,
    SwitchboardProblem,
    ToolResult,
    explain,
    tool_result_block,
)
from tests.harness import ROOT, Hub, mcp_session

URL = "https://hub.test"
KEY = "sbk_" + "k" * 43
_PROBLEM = "application/problem+json"


def _problem(
    status: int, slug: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {"type": slug, "title": slug, "status": status, "detail": detail, **extra}
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": _PROBLEM, **(headers or {})}
    )


def _fake_hub(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
    """The agent API's answers, by tool: one of each outcome a call can have."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/v1/tools":
            fmt = request.url.params.get("format")
            return httpx.Response(200, json={"tools": [{"name": "hubspot_contacts_search", "format": fmt}]})
        if path.startswith("/v1/calls/"):
            call_id = path.rsplit("/", 1)[-1]
            if call_id == "held":
                return httpx.Response(202, json={"call_id": call_id, "status": "pending_approval"})
            if call_id == "refused":
                return _problem(403, "approval_denied", "call refused was denied: it did not run")
            return httpx.Response(200, json={"call_id": call_id, "status": "done", "result": {"id": "901"}})
        tool = path.split("/")[3]
        body = json.loads(request.content)
        if tool == "search":
            result = {"contacts": [{"email": "ada@example.com"}], "echo": body}
            notes = ["limit was lowered to 5, the most this agent may fetch per call"]
            return httpx.Response(200, json={"call_id": "c1", "result": result, "notes": notes})
        if tool == "create":
            detail = "approval of the crm.contacts.write grant: every call needs a human's approval. The call waits"
            return httpx.Response(
                202,
                json={"call_id": "c2", "status": "pending_approval", "detail": detail, "outcome_url": "/v1/calls/c2"},
            )
        if tool == "delete":
            return _problem(
                403,
                "scope_denied",
                "no grant of crm.contacts.write allows delete; an admin can grant it on the Switchboard admin page",
                scopes=["crm.contacts.write"],
            )
        if tool == "post":
            return _problem(
                403,
                "constraint_violated",
                "constraint 'channels' of the messaging.chat.send grant: argument 'channel' = 'C9' is outside "
                "the allowed channels",
            )
        if tool == "busy":
            return _problem(429, "rate_limited", "more than 3 calls per minute", headers={"Retry-After": "17"})
        if tool == "bad":
            errors = [{"field": "query", "message": "String should have at most 200 characters"}]
            return _problem(422, "invalid_arguments", "arguments do not match bad's input schema", errors=errors)
        return httpx.Response(502, text="<html><body>Bad gateway</body></html>", headers={"content-type": "text/html"})

    return answer


def _client(seen: list[httpx.Request], session: str | None = None) -> Switchboard:
    http = httpx.Client(transport=httpx.MockTransport(_fake_hub(seen)))
    return Switchboard(URL + "/", KEY, session=session, http=http)


def test_call_returns_typed_results_and_pending_calls() -> None:
    seen: list[httpx.Request] = []
    with _client(seen, session="conv-1") as sb:
        found = sb.call("search", {"query": "ada"}, connection="crm-b")
        assert isinstance(found, ToolResult) and found.call_id == "c1"
        assert found.result["contacts"] == [{"email": "ada@example.com"}]
        assert found.notes == ("limit was lowered to 5, the most this agent may fetch per call",)
        # The connection travels beside the arguments, not inside them.
        assert found.result["echo"] == {"arguments": {"query": "ada"}, "connection": "crm-b"}

        held = sb.call("create", {"email": "e@x.io"})
        assert isinstance(held, Pending) and held.call_id == "c2" and held.outcome_url == "/v1/calls/c2"
        assert isinstance(sb.outcome("held", wait=0), Pending)
        done = sb.outcome("c2", wait=5)
        assert isinstance(done, ToolResult) and done.result == {"id": "901"}

        assert sb.tools() == [{"name": "hubspot_contacts_search", "format": "switchboard"}]
        assert sb.anthropic_tools()[0]["format"] == "anthropic"
    for request in seen:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["x-switchboard-session"] == "conv-1"
    assert [str(r.url) for r in seen][:2] == [f"{URL}/v1/tools/search/call", f"{URL}/v1/tools/create/call"]
    assert seen[3].url.params["wait"] == "5"


def test_problems_are_typed_with_their_slug_status_and_retry_after() -> None:
    with _client([]) as sb:
        with pytest.raises(SwitchboardProblem) as busy:
            sb.call("busy", {})
        assert (busy.value.type, busy.value.status, busy.value.retry_after) == ("rate_limited", 429, 17.0)
        with pytest.raises(SwitchboardProblem) as denied:
            sb.outcome("refused")
        assert denied.value.type == "approval_denied" and denied.value.status == 403
        with pytest.raises(SwitchboardProblem) as proxy:
            sb.call("unknown-upstream", {})
        # Not the hub's problem+json (a proxy's page): still typed, with what the page said.
        assert proxy.value.type == "http_error" and proxy.value.status == 502 and "Bad gateway" in proxy.value.detail


def test_tool_results_explain_refusals_and_waiting_calls_to_the_model() -> None:
    message = {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "tu_1", "name": "search", "input": {"query": "ada", "connection": "crm"}},
            {"type": "tool_use", "id": "tu_2", "name": "create", "input": {"email": "e@x.io"}},
            {"type": "tool_use", "id": "tu_3", "name": "delete", "input": {}},
            {"type": "tool_use", "id": "tu_4", "name": "post", "input": {"channel": "C9"}},
            {"type": "tool_use", "id": "tu_5", "name": "busy", "input": {}},
            {"type": "tool_use", "id": "tu_6", "name": "bad", "input": {"query": "x" * 300}},
        ],
    }
    with _client([]) as sb:
        blocks = sb.run_tool_uses(message)
    assert [b["tool_use_id"] for b in blocks] == ["tu_1", "tu_2", "tu_3", "tu_4", "tu_5", "tu_6"]
    assert all(b["type"] == "tool_result" for b in blocks)
    ok, held, scope, rule, busy, bad = blocks

    # A result is its JSON as text; the hub's notes follow as a second text block.
    assert "is_error" not in ok
    result_text, note = ok["content"]
    assert json.loads(result_text["text"])["echo"] == {"arguments": {"query": "ada"}, "connection": "crm"}
    assert note["text"].startswith("Switchboard: limit was lowered to 5")

    assert held["is_error"] is True
    assert "waits for a human's approval" in held["content"] and "call id c2" in held["content"]
    assert "do not call it again" in held["content"]

    assert scope["is_error"] is True
    assert "scope_denied" in scope["content"] and "crm.contacts.write" in scope["content"]
    assert "an admin can grant it on the Switchboard admin page" in scope["content"]

    assert rule["is_error"] is True
    assert "constraint 'channels' of the messaging.chat.send grant" in rule["content"]
    assert "admin" in rule["content"] and "widen the grant" in rule["content"]

    assert "Retry after 17 seconds" in busy["content"]
    assert "query: String should have at most 200 characters" in bad["content"]


def test_run_tool_uses_takes_an_sdk_message() -> None:
    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "tool_use", "id": "tu_1", "name": "create", "input": {"email": "e@x.io"}}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    with _client([]) as sb:
        (block,) = sb.run_tool_uses(message)
    assert block["tool_use_id"] == "tu_1" and block["is_error"] is True and "call id c2" in block["content"]
    assert sb.run_tool_uses({"content": [{"type": "text", "text": "done"}]}) == []


async def test_the_async_client_has_the_same_answers() -> None:
    seen: list[httpx.Request] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(_fake_hub(seen)))
    async with AsyncSwitchboard(URL, KEY, session="s", http=http) as sb:
        found = await sb.call("search", {"query": "ada"})
        assert isinstance(found, ToolResult) and found.call_id == "c1"
        assert isinstance(await sb.call("create", {}), Pending)
        with pytest.raises(SwitchboardProblem) as denied:
            await sb.call("delete")
        assert denied.value.type == "scope_denied"
        blocks = await sb.run_tool_uses([{"type": "tool_use", "id": "a", "name": "delete", "input": {}}])
        assert blocks[0]["is_error"] and "scope_denied" in blocks[0]["content"]
        assert (await sb.anthropic_tools())[0]["format"] == "anthropic"
        assert isinstance(await sb.outcome("c2"), ToolResult)
    await http.aclose()
    assert {r.headers["x-switchboard-session"] for r in seen} == {"s"}


def test_a_result_without_notes_is_plain_json_text() -> None:
    block = tool_result_block("tu", "t", ToolResult("c", {"ok": "é"}))
    assert block == {"type": "tool_result", "tool_use_id": "tu", "content": '{"ok": "é"}'}
    missing = SwitchboardProblem("scope_denied", 403, "x", body={"missing_provider_scopes": ["crm.objects.write"]})
    assert "reconnect" in explain(missing, "t")


def test_the_client_module_stands_alone(tmp_path: Path) -> None:
    """Runtimes install only hub/client.py: it must import nothing of the hub, and need only httpx."""
    probe = (
        "import sys, hub.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('hub', 'connectors', 'scopes', 'fastapi', "
        "'sqlalchemy', 'pydantic', 'mcp')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "['hub', 'hub.client']"

    shutil.copy(ROOT / "hub" / "client.py", tmp_path / "switchboard_client.py")
    copied = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, '.'); import switchboard_client as c; "
            "print(c.Switchboard.__name__, [m for m in sys.modules if m.split('.')[0] in ('hub', 'scopes')])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert copied.returncode == 0 and copied.stdout.strip() == "Switchboard []", copied.stderr


# --- Against a running hub ------------------------------------------------------------------------------

_READ_LIMITS = {"max_results": 5, "redact": ["pii.phone"], "rate": {"per_minute": 30}}
_SEARCH_LIMITS = (
    "Under your grant: at most 5 results per call; phone numbers are masked in results; "
    "at most 30 calls per minute through the crm.contacts.read grant."
)
_GET_LIMITS = (
    "Under your grant: phone numbers are masked in results; at most 30 calls per minute through the "
    "crm.contacts.read grant."
)


async def _mcp_descriptions(hub: Hub, key: str) -> dict[str, str]:
    async with mcp_session(hub, key) as session:
        listed = await session.list_tools()
    return {t.name: t.description or "" for t in listed.tools}


async def test_descriptions_say_what_each_agents_grants_impose(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write").status_code == 303
    key, plain = hub.create_agent("support-bot"), hub.create_agent("plain-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read", _READ_LIMITS)
    hub.grant("support-bot", "crm", "crm.contacts.write", {"approval": "always", "allowed_properties": ["jobtitle"]})
    hub.grant("plain-bot", "crm", "crm.contacts.read")

    with Switchboard(hub.url, key) as sb:
        described = {t["name"]: t["description"] for t in sb.tools()}
        for fmt in ("anthropic", "mcp"):
            assert {t["name"]: t["description"] for t in sb.tools(fmt)} == described  # type: ignore[arg-type]
        openai = {t["function"]["name"]: t["function"]["description"] for t in sb.tools("openai")}
        assert openai == described
    own = {name: TOOLS[name].description for name in described}
    assert described["hubspot_contacts_search"] == f"{own['hubspot_contacts_search']}\n\n{_SEARCH_LIMITS}"
    # max_results does not touch a tool without a page size; the rest of the grant does.
    assert described["hubspot_contacts_get"] == f"{own['hubspot_contacts_get']}\n\n{_GET_LIMITS}"
    for write in ("hubspot_contacts_create", "hubspot_contacts_update"):
        assert described[write].endswith(
            "Under your grant: you may set only jobtitle; every call needs a human's approval."
        ), described[write]

    # MCP's tools/list says the same, per agent; an unconstrained grant leaves descriptions as they are.
    with anyio.fail_after(60):
        assert await _mcp_descriptions(hub, key) == described
        assert await _mcp_descriptions(hub, plain) == {
            name: TOOLS[name].description for name in ("hubspot_contacts_get", "hubspot_contacts_search")
        }


async def test_the_client_against_a_running_hub(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write").status_code == 303
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read", _READ_LIMITS)
    hub.grant("support-bot", "crm", "crm.contacts.write", {"approval": "always"})
    hub.secrets.add(key)

    with Switchboard(hub.url, key, session="client-test") as sb:
        found = sb.call("hubspot_contacts_search", {"query": "ada", "limit": 50})
        assert isinstance(found, ToolResult)
        contacts = found.result["contacts"]
        assert 0 < len(contacts) <= 5 and any((c["email"] or "").startswith("ada") for c in contacts)
        assert all(c["phone"] is None or c["phone"].startswith("***") for c in contacts)
        assert any("lowered to 5" in note for note in found.notes), found.notes

        held = sb.call("hubspot_contacts_create", {"email": "grace@example.org", "firstname": "Grace"})
        assert isinstance(held, Pending) and held.call_id in held.outcome_url
        assert isinstance(sb.outcome(held.call_id, wait=0), Pending)
        with hub.admin() as admin:
            approved = admin.post(f"/admin/api/approvals/{held.call_id}", json={"approve": True})
            assert approved.status_code == 200, approved.text
        done = sb.outcome(held.call_id, wait=30)
        assert isinstance(done, ToolResult) and done.call_id == held.call_id and done.result["id"]

        refused = sb.call("hubspot_contacts_create", {"email": "linus@example.org"})
        assert isinstance(refused, Pending)
        with hub.admin() as admin:
            assert admin.post(f"/admin/api/approvals/{refused.call_id}", json={"approve": False}).status_code == 200
        with pytest.raises(SwitchboardProblem) as denied:
            sb.outcome(refused.call_id, wait=5)
        assert denied.value.type == "approval_denied" and denied.value.status == 403

        with pytest.raises(SwitchboardProblem) as bad:
            sb.call("hubspot_contacts_get", {"contact_id": "x; drop"})
        assert bad.value.type == "invalid_arguments" and bad.value.body["errors"]

    async with AsyncSwitchboard(hub.url, key) as asb:
        assert [t["name"] for t in await asb.anthropic_tools()] == sorted(
            ["hubspot_contacts_create", "hubspot_contacts_get", "hubspot_contacts_search", "hubspot_contacts_update"]
        )
        with pytest.raises(SwitchboardProblem) as unknown:
            await asb.call("hubspot_companies_search", {"query": "x"})
        assert unknown.value.type == "scope_denied"
        (block,) = await asb.run_tool_uses(
            [{"type": "tool_use", "id": "tu", "name": "hubspot_companies_search", "input": {"query": "x"}}]
        )
        assert block["is_error"] and "crm.companies.read" in block["content"] and "admin" in block["content"]
